"""What only the canary's function can see: the CPU, coverage.py's core, stale bytecode.

Kept apart from the handler so that the handler's executed lines do not
depend on what the probe finds.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from typing import Any

#: Where the layer is unpacked (``/opt`` on Lambda; a folder on the local runtime).
LAYER_ROOT_VARIABLE = "LAMBDA_COVERAGE_CANARY_LAYER"


def probe() -> dict[str, Any]:
    """The machine, the Python, the coverage core in use and the layer's recompiled modules."""
    from coverage_wrapper.health_check import get_coverage_status

    return {
        "machine": platform.machine(),
        "python": "{}.{}".format(*sys.version_info[:2]),
        "core": get_coverage_status()["measurement"]["core"],
        "recompiled": recompiled_modules(os.environ.get(LAYER_ROOT_VARIABLE, "/opt")),
    }


def recompiled_modules(layer_root: str) -> list[str]:
    """The loaded modules from ``layer_root`` that Python compiled instead of using their ``.pyc``.

    A ``.pyc`` is used as shipped only if it is hash-based (a timestamp is
    lost on unzipping) and, when it asks to be checked, matches its source.
    """
    prefix = layer_root.rstrip("/") + "/"
    stale = []
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if not path.endswith(".py") or not path.startswith(prefix):
            continue
        try:
            with open(importlib.util.cache_from_source(path), "rb") as cached:
                header = cached.read(16)
            with open(path, "rb") as source:
                text = source.read()
        except OSError:
            stale.append(name)
            continue
        flags = int.from_bytes(header[4:8], "little")
        if (
            header[:4] != importlib.util.MAGIC_NUMBER
            or not flags & 1
            or (flags & 2 and header[8:16] != importlib.util.source_hash(text))
        ):
            stale.append(name)
    return stale
