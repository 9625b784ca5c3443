"""What coverage.py itself measures for the same calls, run in a fresh process.

The wrapper's uploads are compared with this reference as exact line and arc
sets: the wrapper must neither lose a line nor add one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_SCRIPT = textwrap.dedent(
    """
    import importlib, json, os, sys
    import coverage

    root, module_name, attribute, events, measure_import = json.loads(sys.argv[1])
    os.chdir(root)
    sys.path.insert(0, root)
    cov = coverage.Coverage(data_file=None, branch=True, include=[root + "/*"], config_file=False)
    cov.set_option("run:relative_files", True)
    if measure_import:
        cov.start()
        handler = getattr(importlib.import_module(module_name), attribute)
    else:
        handler = getattr(importlib.import_module(module_name), attribute)
        cov.start()
    for event in events:
        try:
            handler(event, None)
        except Exception:
            pass
    cov.stop()
    data = cov.get_data()
    print(json.dumps({
        f: {"lines": sorted(data.lines(f) or ()), "arcs": sorted(data.arcs(f) or ())}
        for f in data.measured_files()
    }))
    """
)


def reference_measurement(
    root: Path, handler: str, events: list[dict[str, Any]], *, measure_import: bool
) -> tuple[dict[str, set[int]], dict[str, set[tuple[int, int]]]]:
    """Lines and arcs per file when coverage.py runs ``handler`` on ``events`` directly."""
    module_name, _, attribute = handler.rpartition(".")
    argument = json.dumps(
        [str(root), module_name.replace("/", "."), attribute, events, measure_import]
    )
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, argument],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    raw: dict[str, dict[str, list[Any]]] = json.loads(result.stdout)
    lines = {name: set(v["lines"]) for name, v in raw.items()}
    arcs = {name: {(a, b) for a, b in v["arcs"]} for name, v in raw.items()}
    return lines, arcs
