"""Files that never ran are reported at 0 %, as coverage.py's ``source`` reports them.

The function's folder holds a module no event imports, a package no event
imports, a folder that is not a package, a vendored dependency (listed by its
``*.dist-info/RECORD``) and a symbolic link to a file outside the folder.
Our figures per file and in total are compared with a direct coverage.py run
of the same handler and event with ``source`` set to the folder.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import coverage
import pytest

from coverage_combiner.cli import EXIT_OK, main
from tests.combiner.conftest import key
from tests.combiner.test_functions_apart import _inside, measure

APP = """\
import generated


def handler(event, context):
    total = generated.BASE
    for item in event["items"]:
        total += item
    return total
"""
FILES = {
    "app.py": APP,
    "generated.py": "BASE = 0\n\n\ndef never():\n    return 1\n",
    "untested.py": "def f(x):\n    if x:\n        return 1\n    return 2\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": "VALUE = 1\nOTHER = 2\n",
    "notapkg/script.py": "print('not importable')\n",
    "requests/__init__.py": "from requests.api import get\n",
    "requests/api.py": "def get(url):\n    return url\n",
    "requests-2.0.dist-info/RECORD": (
        "requests/__init__.py,sha256=x,30\nrequests/api.py,sha256=y,30\n"
        "requests-2.0.dist-info/RECORD,,\n"
    ),
}
EVENT = {"items": [1, 2]}


def _function(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The project, the function's folder, and the folder with its measured data."""
    repo = tmp_path / "repo"
    folder = repo / "orders"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'not yours'\n")
    (folder / "leak.py").symlink_to(secret)
    inputs = tmp_path / "bucket"
    measure(folder, "app", EVENT, "orders@$LATEST", inputs / key("orders"))
    sys.modules.pop("generated", None)
    return repo, folder, inputs


def _coverage_source_run(
    folder: Path, tmp_path: Path, config: Path | None = None
) -> dict[str, str]:
    """coverage.py's percentages with ``source`` = the folder (vendored code and the link
    outside it omitted) and ``config``, per absolute path and ``TOTAL``."""
    cov = coverage.Coverage(
        data_file=str(tmp_path / "direct.coverage"),
        branch=True,
        source=[str(folder)],
        config_file=str(config) if config else False,
    )
    omitted = cov.get_option("run:omit") or []
    assert isinstance(omitted, list)
    cov.set_option("run:omit", [*omitted, f"{folder}/requests/*", f"{folder}/leak.py"])
    with _inside(folder):
        for name in ("app", "generated"):
            sys.modules.pop(name, None)
        cov.start()
        try:
            __import__("app").handler(EVENT, None)
        finally:
            cov.stop()
            for name in ("app", "generated"):
                sys.modules.pop(name, None)
        cov.save()
    out = tmp_path / "direct.json"
    cov.json_report(outfile=str(out))
    report = json.loads(out.read_text())
    # coverage.py started inside the folder: it names files relative to it.
    shown = {
        str(folder / path): info["summary"]["percent_covered_display"]
        for path, info in report["files"].items()
    }
    return {**shown, "TOTAL": report["totals"]["percent_covered_display"]}


def test_files_that_never_ran_count_as_coverage_source_counts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, folder, inputs = _function(tmp_path)
    monkeypatch.chdir(repo)
    expected = _coverage_source_run(folder, tmp_path)
    code = main(
        ["combine", str(inputs), "-o", str(tmp_path / "out"), "--source-root", str(repo), "--json"]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    shown = json.loads(captured.out)["report"]["percent_covered_display"]
    ours = {os.path.abspath(path): percent for path, percent in shown["files"].items()}
    assert {**ours, "TOTAL": shown["total"]} == expected
    assert set(ours) == {
        str(folder / name)
        for name in ("app.py", "generated.py", "untested.py", "pkg/__init__.py", "pkg/mod.py")
    }
    assert ours[str(folder / "untested.py")] == "0"


def test_no_unexecuted_reports_only_what_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, folder, inputs = _function(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"]
    assert main([*argv, "--no-unexecuted"]) == EXIT_OK
    files = json.loads(capsys.readouterr().out)["report"]["percent_covered_display"]["files"]
    assert {os.path.abspath(path) for path in files} == {
        str(folder / "app.py"),
        str(folder / "generated.py"),
    }


def test_omit_leaves_unexecuted_files_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, folder, inputs = _function(tmp_path)
    (repo / ".coveragerc").write_text("[run]\nomit = */pkg/*\n")
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    assert main(["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["report"]["percent_covered_display"]["files"]
    assert {os.path.abspath(path) for path in files} == {
        str(folder / name) for name in ("app.py", "generated.py", "untested.py")
    }


def test_without_a_source_root_the_working_folder_is_not_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, folder, inputs = _function(tmp_path)
    monkeypatch.chdir(repo)
    assert main(["combine", str(inputs), "-o", str(tmp_path / "out"), "--json"]) == EXIT_OK
    files = json.loads(capsys.readouterr().out)["report"]["percent_covered_display"]["files"]
    assert {os.path.abspath(path) for path in files} == {
        str(folder / "app.py"),
        str(folder / "generated.py"),
    }


def test_files_that_never_ran_are_found_inside_a_deployment_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The asset zipped (the function's folder at its top): the same files, the same figures."""
    repo, folder, inputs = _function(tmp_path)
    bundle = tmp_path / "asset.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, text in FILES.items():
            archive.writestr(name, text)
        # A member that names a file outside the zip: never read.
        archive.writestr("../outside.py", "X = 1\n")
        archive.writestr("../__init__.py", "")
    (tmp_path / "outside.py").write_text("X = 1\n")
    monkeypatch.chdir(repo)
    figures = {}
    for label, where in (
        ("folder", ["--source-root", str(repo)]),
        ("zip", ["--source-zip", str(bundle)]),
    ):
        argv = ["combine", str(inputs), "-o", str(tmp_path / label), "--json", *where]
        code = main(argv)
        captured = capsys.readouterr()
        assert code == EXIT_OK, captured.err
        shown = json.loads(captured.out)["report"]["percent_covered_display"]
        base = folder if label == "folder" else bundle
        figures[label] = {
            os.path.relpath(os.path.abspath(path), base): percent
            for path, percent in shown["files"].items()
        }
        figures[label]["TOTAL"] = shown["total"]
    assert figures["zip"] == figures["folder"]
    assert figures["zip"]["untested.py"] == "0"
    assert "requests/api.py" not in figures["zip"]
    assert "notapkg/script.py" not in figures["zip"]
    assert not any("outside" in name for name in figures["zip"])


def test_with_its_own_configuration_untested_modules_and_vendored_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's whole case: the function's own .coveragerc (exclusions, omit, precision),
    modules no event imports, a vendored package: our figures are coverage.py's."""
    repo, folder, inputs = _function(tmp_path)
    config = folder / ".coveragerc"
    config.write_text(
        "[run]\nomit = */pkg/mod.py\n[report]\nexclude_also =\n    def never\n    if x:\n"
        "precision = 1\n"
    )
    monkeypatch.chdir(repo)
    expected = _coverage_source_run(folder, tmp_path, config)
    out = tmp_path / "out"
    code = main(["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    report = json.loads(captured.out)["report"]
    assert report["config_file"] == str(config)
    shown = report["percent_covered_display"]
    ours = {os.path.abspath(path): percent for path, percent in shown["files"].items()}
    assert {**ours, "TOTAL": shown["total"]} == expected
    assert str(folder / "pkg" / "mod.py") not in ours
    assert ours[str(folder / "untested.py")] == "0.0"


def test_skip_empty_leaves_empty_files_out_of_the_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, inputs = _function(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--format", "html"]
    assert main(argv) == EXIT_OK
    assert "___init___py.html" in (out / "html" / "index.html").read_text()
    (repo / "pyproject.toml").write_text("[tool.coverage.report]\nskip_empty = true\n")
    assert main(argv) == EXIT_OK
    index = (out / "html" / "index.html").read_text()
    assert "___init___py.html" not in index
    assert "_untested_py.html" in index
