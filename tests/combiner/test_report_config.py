"""The user's coverage.py configuration gives our figures: they equal ``coverage report``'s.

A small project is measured for real (coverage.py over its handler, paths
relative to the task root, as the wrapper records them), combined by the CLI
with a configuration in one of the places coverage.py users keep it, and
our total and per-file percentages (as strings, at the configured precision)
and our threshold verdict are compared with ``python -m coverage report``
run on our own ``.coverage`` with the same configuration and source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coverage_combiner.cli import EXIT_BELOW_THRESHOLD, EXIT_OK, main
from tests.combiner.conftest import key
from tests.combiner.test_functions_apart import measure

APP = """\
import generated


def handler(event, context):
    if event.get("debug"):  # pragma: no cover
        dump(event)
        return None
    total = generated.BASE
    for item in event["items"]:
        if item > 0:
            total += item
    return total


def dump(event):  # pragma: no cover
    print(event)


def unused():
    value = 1
    return value
"""
GENERATED = """\
BASE = 0


def never():
    return 1
"""

#: (where the file goes, relative to the project, its text, whether our CLI is given it
#: with --rcfile). coverage.py is always given the file with --rcfile.
CONFIGS = {
    "pyproject: exclusions, precision and fail_under": (
        "pyproject.toml",
        "[tool.coverage.report]\nexclude_also = ['def unused']\nprecision = 1\nfail_under = 90\n",
        False,
    ),
    "the function's own .coveragerc: omit": (
        "orders/.coveragerc",
        "[report]\nomit = */generated.py\nprecision = 2\n",
        False,
    ),
    "setup.cfg: partial branches": (
        "setup.cfg",
        "[coverage:report]\npartial_branches =\n    if item > 0\nprecision = 3\n",
        False,
    ),
    "--rcfile: include and fail_under met": (
        "ci/coverage.ini",
        "[report]\ninclude = */app.py\nfail_under = 50\nprecision = 1\n",
        True,
    ),
    "pragma only, no configuration": ("", "", False),
}


PYPROJECT = CONFIGS["pyproject: exclusions, precision and fail_under"][1]


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """The project (one function, ``orders``) and the folder with its measured data."""
    repo = tmp_path / "repo"
    folder = repo / "orders"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(APP)
    (folder / "generated.py").write_text(GENERATED)
    inputs = tmp_path / "bucket"
    measure(folder, "app", {"items": [1, 2]}, "orders@$LATEST", inputs / key("orders"))
    sys.modules.pop("generated", None)
    return repo, inputs


def _coverage_report(repo: Path, data: Path, rcfile: Path | None) -> tuple[dict[str, str], int]:
    """``coverage report``'s percentage per row (``TOTAL`` included) and its exit code."""
    command = [sys.executable, "-m", "coverage", "report", f"--data-file={data}"]
    command.append(f"--rcfile={rcfile}" if rcfile else "--rcfile=/dev/null")
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode in (0, 2), done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts and parts[-1].endswith("%"):
            rows[parts[0]] = parts[-1].removesuffix("%")
    return rows, done.returncode


@pytest.mark.parametrize("case", list(CONFIGS))
def test_our_figures_and_verdict_equal_coverage_reports(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    where, text, given = CONFIGS[case]
    config = repo / where if where else None
    if config is not None:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(text)
    out = tmp_path / "out"
    monkeypatch.chdir(repo)
    argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"]
    if given:
        argv += ["--rcfile", str(config)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code in (EXIT_OK, EXIT_BELOW_THRESHOLD), captured.err
    summary = json.loads(captured.out)

    theirs, their_code = _coverage_report(repo, out / ".coverage", config)
    shown = summary["report"]["percent_covered_display"]
    ours = {os.path.relpath(path): percent for path, percent in shown["files"].items()}
    ours["TOTAL"] = shown["total"]
    assert ours == theirs
    assert set(shown["files"]) == set(summary["files"])
    assert (code == EXIT_BELOW_THRESHOLD) == (their_code == 2)
    assert summary["report"]["config_file"] == (str(config) if config else None)


def test_the_figures_differ_without_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The comparison above can fail: the configuration changes the figures and the verdict."""
    repo, inputs = _project(tmp_path)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.chdir(repo)
    empty = tmp_path / "empty.ini"
    empty.write_text("[report]\n")
    shown = {}
    codes = {}
    for label, extra in (("configured", []), ("plain", ["--rcfile", str(empty)])):
        out = tmp_path / label
        argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"]
        codes[label] = main([*argv, *extra])
        report = json.loads(capsys.readouterr().out)["report"]
        shown[label] = report["percent_covered_display"]["total"]
    assert codes == {"configured": EXIT_BELOW_THRESHOLD, "plain": EXIT_OK}
    assert shown["configured"] != shown["plain"]


def test_fail_under_flag_wins_over_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.chdir(repo)
    argv = ["combine", str(inputs), "-o", str(tmp_path / "out"), "--source-root", str(repo)]
    assert main([*argv, "--fail-under", "10"]) == EXIT_OK
    capsys.readouterr()
    assert main(argv) == EXIT_BELOW_THRESHOLD
    config = repo / "pyproject.toml"
    assert f"85.71% is below fail_under of {config} 90" in capsys.readouterr().err


def test_a_missing_rcfile_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    monkeypatch.chdir(repo)
    code = main(["combine", str(inputs), "-o", str(tmp_path / "out"), "--rcfile", "nowhere.ini"])
    assert code == 1
    assert "--rcfile 'nowhere.ini' is not a file" in capsys.readouterr().err


def test_run_settings_do_not_change_where_the_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """[run] names another data file, parallel files, sources and a plugin that is not
    installed: the report still reads our data, and [run] omit leaves its files out."""
    repo, inputs = _project(tmp_path)
    (repo / ".coveragerc").write_text(
        "[run]\n"
        "data_file = /nonexistent/elsewhere\n"
        "parallel = true\n"
        "source = nowhere\n"
        "plugins = no_such_coverage_plugin\n"
        "omit = */generated.py\n"
        "[report]\nprecision = 1\n"
    )
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    code = main(["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    shown = json.loads(captured.out)["report"]["percent_covered_display"]
    equivalent = tmp_path / "equivalent.ini"
    equivalent.write_text("[report]\nomit = */generated.py\nprecision = 1\n")
    theirs, _ = _coverage_report(repo, out / ".coverage", equivalent)
    ours = {os.path.relpath(path): percent for path, percent in shown["files"].items()}
    assert {**ours, "TOTAL": shown["total"]} == theirs
    assert set(ours) == {"orders/app.py"}


def test_html_title_and_skip_covered_come_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, inputs = _project(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo)]
    assert main([*argv, "--format", "html"]) == EXIT_OK
    index = (out / "html" / "index.html").read_text()
    assert "<title>Lambda Coverage</title>" in index
    assert "generated_py.html" in index
    (repo / "tox.ini").write_text(
        "[coverage:report]\nskip_covered = true\nexclude_also = def never\n"
        "[coverage:html]\ntitle = Orders service\n"
    )
    assert main([*argv, "--format", "html"]) == EXIT_OK
    index = (out / "html" / "index.html").read_text()
    assert "<title>Orders service</title>" in index
    # generated.py is fully covered once never() is excluded: skipped.
    assert "generated_py.html" not in index
    assert "app_py.html" in index


def test_functions_with_different_configurations_use_the_working_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    other = repo / "payments"
    other.mkdir()
    (other / "app.py").write_text(APP)
    (other / "generated.py").write_text(GENERATED)
    measure(other, "app", {"items": [-1]}, "payments@$LATEST", inputs / key("payments"))
    sys.modules.pop("generated", None)
    (repo / "orders" / ".coveragerc").write_text("[report]\nprecision = 2\n")
    (other / ".coveragerc").write_text("[report]\nprecision = 3\n")
    (repo / "setup.cfg").write_text("[coverage:report]\nprecision = 1\n")
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    code = main(["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    summary = json.loads(captured.out)
    assert summary["report"]["config_file"] == str(repo / "setup.cfg")
    assert summary["report"]["precision"] == 1
    assert "different coverage configurations" in captured.err
    assert any("different coverage configurations" in w for w in summary["warnings"])
    assert "give one with --rcfile" in captured.err
    # Sharing one configuration, they use it.
    (other / ".coveragerc").unlink()
    (repo / "orders" / ".coveragerc").unlink()
    (repo / ".coveragerc").write_text("[report]\nprecision = 4\n")
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(out),
            "--source-root",
            f"orders={repo}",
            "--source-root",
            f"payments={repo}",
            "--json",
        ]
    )
    assert json.loads(capsys.readouterr().out)["report"]["precision"] == 4


def test_fail_under_rounds_the_total_as_coverage_report_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A total of 76.47 % passes 76.5 (rounded to the threshold's one digit) and fails
    76.48, in both tools; a plain comparison would fail both."""
    repo, inputs = _project(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    argv = ["combine", str(inputs), "-o", str(out), "--source-root", str(repo), "--json"]
    code = main([*argv, "--fail-under", "76.5"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["totals"]["percent_covered"] == 76.47
    command = [sys.executable, "-m", "coverage", "report", f"--data-file={out / '.coverage'}"]
    command += ["--rcfile=/dev/null"]
    theirs = [
        subprocess.run(
            [*command, f"--fail-under={threshold}"], cwd=repo, capture_output=True, check=False
        ).returncode
        for threshold in ("76.5", "76.48")
    ]
    assert (code, main([*argv, "--fail-under", "76.48"])) == (EXIT_OK, EXIT_BELOW_THRESHOLD)
    assert theirs == [0, 2]


def test_a_broken_configuration_is_named_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    (repo / ".coveragerc").write_text("[report]\nprecision = many\n")
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    code = main(["combine", str(inputs), "-o", str(out), "--source-root", str(repo)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot read the coverage configuration {repo / '.coveragerc'}" in err
    assert "--rcfile" in err
    assert not out.exists()


def test_a_data_file_for_a_later_merge_needs_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, inputs = _project(tmp_path)
    (repo / ".coveragerc").write_text("[report]\nprecision = many\n")
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    code = main(["combine", str(inputs), "-o", str(out), "--format", "data"])
    assert code == EXIT_OK, capsys.readouterr().err
    assert (out / ".coverage").is_file()
