"""Every function's files are its own: ``index.py`` of three functions is three files.

The data files here are measured for real (coverage.py over real handlers,
paths relative to each function's task root, as the wrapper records them),
and the expectations are exact arcs per file.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coverage
import pytest

from coverage_combiner import CombineOptions, PathRemapper, combine
from coverage_combiner.cli import EXIT_OK, main
from coverage_combiner.outputs import resolve_sources
from tests.combiner.conftest import Arcs, key, read_data

HANDLERS = {
    "orders": (
        "def handler(event, context):\n"
        "    if event.get('express'):\n"
        "        return 'express'\n"
        "    return 'standard'\n"
    ),
    "payments": (
        "import json\n"
        "\n"
        "\n"
        "def handler(event, context):\n"
        "    amount = event['amount']\n"
        "    if amount > 100:\n"
        "        return json.dumps({'review': amount})\n"
        "    return json.dumps({'charged': amount})\n"
    ),
    "shipping": (
        "def handler(event, context):\n"
        "    parcels = [p for p in event['parcels'] if p]\n"
        "    return len(parcels)\n"
    ),
}
EVENTS: dict[str, dict[str, Any]] = {
    "orders": {"express": True},
    "payments": {"amount": 5},
    "shipping": {"parcels": [1, 0, 2]},
}


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        os.chdir(old)


def measure(task_root: Path, module: str, event: dict[str, Any], context: str, out: Path) -> Arcs:
    """Run ``module.handler(event)`` under coverage.py as the wrapper does; return its arcs."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cov = coverage.Coverage(
        data_file=str(out), branch=True, include=[f"{task_root}/*"], config_file=False
    )
    cov.set_option("run:relative_files", True)
    with _inside(task_root):
        sys.modules.pop(module, None)
        cov.start()
        cov.switch_context(context)
        try:
            importlib.import_module(module).handler(event, None)
        finally:
            cov.stop()
            sys.modules.pop(module, None)
        cov.save()
    data = cov.get_data()
    return {name: set(data.arcs(name) or ()) for name in data.measured_files()}


@pytest.fixture
def stack(tmp_path: Path) -> tuple[Path, Path, dict[str, Arcs]]:
    """A checkout with one folder per function, each with its own ``index.py``, and their data."""
    repo = tmp_path / "repo"
    inputs = tmp_path / "bucket"
    measured: dict[str, Arcs] = {}
    for function, code in HANDLERS.items():
        folder = repo / "services" / function
        folder.mkdir(parents=True)
        (folder / "index.py").write_text(code)
        measured[function] = measure(
            folder, "index", EVENTS[function], f"{function}@$LATEST", inputs / key(function)
        )
    return repo, inputs, measured


def test_three_functions_with_an_index_py_each_stay_three_files(
    stack: tuple[Path, Path, dict[str, Arcs]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs, measured = stack
    assert all(set(arcs) == {"index.py"} for arcs in measured.values())
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(out),
            "--source-root",
            str(repo),
            "--format",
            "data,json,xml",
            "--json",
        ]
    )
    assert code == EXIT_OK, capsys.readouterr().err
    _, arcs, contexts = read_data(out / ".coverage")
    assert arcs == {
        str(repo / "services" / function / "index.py"): measured[function]["index.py"]
        for function in HANDLERS
    }
    assert contexts == {f"{function}@$LATEST" for function in HANDLERS}
    summary = json.loads(capsys.readouterr().out)
    assert summary["sources"] == {f: str(repo / "services" / f) for f in HANDLERS}
    # Per function: its own file only. orders ran 3 of 4 statements, payments 5 of 6,
    # shipping all 3.
    assert {
        name: (f["files"], f["statements"], f["percent_covered"])
        for name, f in summary["functions"].items()
    } == {
        "orders": (1, 4, 75.0),
        "payments": (1, 6, 83.33),
        "shipping": (1, 3, 100.0),
    }
    assert sorted(summary["files"]) == [
        str(repo / "services" / function / "index.py") for function in sorted(HANDLERS)
    ]
    assert (out / "coverage.xml").read_text().count('filename="') == 3


def test_deployed_names_find_their_folders_and_shared_code_merges(tmp_path: Path) -> None:
    """CDK names functions ``Stack-OrdersFn-1A2B``; two functions built from one asset share it."""
    repo = tmp_path / "repo"
    inputs = tmp_path / "bucket"
    (repo / "orders").mkdir(parents=True)
    (repo / "orders" / "index.py").write_text(HANDLERS["orders"])
    (repo / "payments").mkdir()
    (repo / "payments" / "index.py").write_text(HANDLERS["payments"])
    shared = repo / "shared-asset"
    (shared / "lib").mkdir(parents=True)
    (shared / "lib" / "__init__.py").write_text("")
    (shared / "lib" / "db.py").write_text(
        "def get(n):\n    if n:\n        return n\n    return None\n"
    )
    (shared / "refunds.py").write_text(
        "from lib import db\n\n\ndef handler(event, context):\n    return db.get(event['n'])\n"
    )
    (shared / "credits.py").write_text(
        "from lib import db\n\n\ndef handler(event, context):\n    return db.get(0)\n"
    )
    orders = measure(
        repo / "orders",
        "index",
        EVENTS["orders"],
        "Shop-OrdersFn-1A2B@$LATEST",
        inputs / key("Shop-OrdersFn-1A2B"),
    )
    payments = measure(
        repo / "payments",
        "index",
        EVENTS["payments"],
        "Shop-PaymentsFn-9Z@$LATEST",
        inputs / key("Shop-PaymentsFn-9Z"),
    )
    refunds = measure(shared, "refunds", {"n": 3}, "refunds@$LATEST", inputs / key("refunds"))
    credits = measure(shared, "credits", {}, "credits@$LATEST", inputs / key("credits"))
    for module in ("lib", "lib.db"):
        sys.modules.pop(module, None)
    result = combine([str(inputs)])
    remap = resolve_sources(result.merged, PathRemapper.build(source_roots=[str(repo)]))
    assert remap.unresolved == {}
    assert remap.function_roots == {
        "Shop-OrdersFn-1A2B": f"{repo}/orders",
        "Shop-PaymentsFn-9Z": f"{repo}/payments",
        "refunds": f"{repo}/shared-asset",
        "credits": f"{repo}/shared-asset",
    }
    out = tmp_path / "out.coverage"
    from coverage_combiner.outputs import write_data_file

    write_data_file(result.merged, out, remap)
    _, arcs, _ = read_data(out)
    assert arcs == {
        str(repo / "orders" / "index.py"): orders["index.py"],
        str(repo / "payments" / "index.py"): payments["index.py"],
        str(shared / "refunds.py"): refunds["refunds.py"],
        str(shared / "credits.py"): credits["credits.py"],
        # One file, deployed into two functions: the union of what each ran.
        str(shared / "lib" / "db.py"): refunds["lib/db.py"] | credits["lib/db.py"],
        str(shared / "lib" / "__init__.py"): refunds["lib/__init__.py"],
    }
    assert refunds["lib/db.py"] != credits["lib/db.py"]


def test_without_a_source_the_run_says_whose_source_is_missing_and_keeps_them_apart(
    stack: tuple[Path, Path, dict[str, Arcs]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, inputs, measured = stack
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    out = tmp_path / "out"
    assert main(["combine", str(inputs), "-o", str(out), "--format", "data,html", "-q"]) == 1
    error = capsys.readouterr().err
    for function in HANDLERS:
        assert (
            f"the source of function {function!r} was not found: no folder under . holds "
            f"index.py; give its folder with --source-root {function}=PATH"
        ) in error
    assert main(["combine", str(inputs), "-o", str(out), "--format", "data", "-q"]) == EXIT_OK
    _, arcs, _ = read_data(out / ".coverage")
    # Apart all the same, each under its function's name.
    assert arcs == {str(empty / f / "index.py"): measured[f]["index.py"] for f in HANDLERS}


def test_two_candidate_folders_and_no_name_to_choose_by_is_reported(
    stack: tuple[Path, Path, dict[str, Arcs]], tmp_path: Path
) -> None:
    repo, inputs, _ = stack
    result = combine([str(inputs)], CombineOptions(function="orders"))
    (repo / "services" / "orders").rename(repo / "services" / "first")
    remap = resolve_sources(result.merged, PathRemapper.build(source_roots=[str(repo)]))
    folders = ", ".join(f"{repo}/services/{name}" for name in ("first", "payments", "shipping"))
    assert remap.unresolved == {"orders": f"3 folders under {repo} hold its files ({folders})"}
    # Named explicitly, it is found, whatever its folder is called.
    explicit = PathRemapper.build(source_roots=[str(repo), f"orders={repo}/services/first"])
    assert resolve_sources(result.merged, explicit).unresolved == {}


def test_functions_are_found_inside_a_deployment_zip(
    stack: tuple[Path, Path, dict[str, Arcs]], tmp_path: Path
) -> None:
    repo, inputs, measured = stack
    bundle = tmp_path / "stack.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for function in HANDLERS:
            archive.write(repo / "services" / function / "index.py", f"{function}/index.py")
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(out),
            "--source-zip",
            str(bundle),
            "--format",
            "data,xml",
            "-q",
        ]
    )
    assert code == EXIT_OK
    _, arcs, _ = read_data(out / ".coverage")
    assert arcs == {f"{bundle}/{f}/index.py": measured[f]["index.py"] for f in HANDLERS}
    xml = (out / "coverage.xml").read_text()
    reported = re.findall(r'filename="([^"]+)"', xml)
    assert sorted(reported) == [f"{bundle}/{f}/index.py" for f in sorted(HANDLERS)]
