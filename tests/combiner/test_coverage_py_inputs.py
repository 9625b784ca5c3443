"""Inputs as coverage.py writes them: ``.coverage``, parallel ``.coverage.<suffix>`` files,
and the sources and reports that sit beside them in a folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from coverage_combiner.cli import EXIT_OK, EXIT_PARTIAL, main
from coverage_combiner.object_names import is_data_key, is_plainly_not_data
from tests.combiner.conftest import read_data, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

APP = "def handler(event):\n    if event:\n        return 1\n    return 2\n\n\nhandler(EVENT)\n"

#: What a coverage.py user's folder holds besides the data.
NOT_DATA = ["app.py", "coverage.json", "report.xml", "htmlcov/index.html", "README.md"]


def run_coverage_py(source: Path, data_file: Path, event: int, suffix: str | None) -> None:
    """Measure ``app.py`` with coverage.py itself (in a process of its own, with branches)."""
    script = (
        "import runpy, sys\n"
        "from coverage import Coverage\n"
        f"cov = Coverage(data_file={str(data_file)!r}, data_suffix={suffix!r}, branch=True,\n"
        f"               config_file=False, source=[{str(source)!r}])\n"
        "cov.start()\n"
        f"runpy.run_path({str(source / 'app.py')!r}, init_globals={{'EVENT': {event}}})\n"
        "cov.stop()\n"
        "cov.save()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=source)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder as a coverage.py user leaves it: ``.coverage``, a parallel file, sources,
    reports."""
    where = tmp_path / "project"
    where.mkdir()
    (where / "app.py").write_text(APP)
    run_coverage_py(where, where / ".coverage", 1, None)
    run_coverage_py(where, where / ".coverage", 0, "host.123.XYZ")
    assert (where / ".coverage.host.123.XYZ").is_file()
    (where / "coverage.json").write_text("{}")
    (where / "report.xml").write_text("<coverage/>")
    (where / "htmlcov").mkdir()
    (where / "htmlcov" / "index.html").write_text("<html></html>")
    (where / "README.md").write_text("# project\n")
    return where


def coverage_combine(folder: Path, tmp_path: Path) -> Path:
    """What ``coverage combine`` makes of the folder's two data files."""
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in (".coverage", ".coverage.host.123.XYZ"):
        shutil.copy(folder / name, alone / name.replace(".coverage", ".coverage.part", 1))
    subprocess.run(
        [sys.executable, "-m", "coverage", "combine", "--data-file", str(alone / ".coverage")],
        check=True,
        cwd=alone,
        env={**os.environ, "COVERAGE_RCFILE": os.devnull},
    )
    return alone / ".coverage"


def test_names_coverage_py_writes_are_data() -> None:
    assert is_data_key(".coverage")
    assert is_data_key("project/.coverage")
    assert is_data_key("project/.coverage.host.123.XYZ")
    assert is_data_key("coverage/orders/$LATEST/1.2.3.coverage")
    assert is_data_key("s3-prefix/.coverage.ci-runner.4242.abcdef")
    assert not is_data_key(".coveragerc")
    assert not is_data_key("project/coverage.json")
    assert not is_data_key("a.coverage.bak")
    for name in [*NOT_DATA, ".coveragerc", "htmlcov/style.css", "pkg/__pycache__/x.cpython-312"]:
        assert is_plainly_not_data(name), name
    for name in ["orders.cov", "data.sqlite", "notes"]:
        assert not is_plainly_not_data(name), name


def test_a_coverage_py_folder_combines_cleanly(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(folder),
            "--output",
            str(out),
            "--source-root",
            str(folder),
            "--format",
            "data,json",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    expected = read_data(coverage_combine(folder, tmp_path))
    ours = read_data(out / ".coverage")
    app = str(folder / "app.py")
    assert expected[0] == {app: {1, 2, 3, 4, 7}}
    assert ours[0] == expected[0]
    assert ours[1] == expected[1]
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert summary["inputs"]["merged"] == 2
    assert summary["inputs"]["rejected"] == []
    assert summary["inputs"]["skipped"] == []
    assert sorted(entry["input"] for entry in summary["inputs"]["not_data"]) == sorted(
        str(folder / name) for name in NOT_DATA
    )
    assert {entry["reason"] for entry in summary["inputs"]["not_data"]} == {
        "not coverage data: a source file, a report or a configuration file"
    }
    assert summary["inputs"]["skipped_not_data"] == len(NOT_DATA)
    assert "skipped" not in captured.err


def test_a_corrupt_parallel_file_makes_the_run_partial(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / ".coverage.x").write_bytes(b"not a database at all")
    code = main(
        [
            "combine",
            str(folder),
            "--output",
            str(tmp_path / "out"),
            "--source-root",
            str(folder),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL
    assert f"lambda-coverage: rejected {folder / '.coverage.x'}: " in err
    assert err.count("lambda-coverage:") == 1, err


def test_an_unknown_file_still_makes_the_run_partial(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "orders.cov").write_bytes(b"misnamed data, perhaps")
    out = str(tmp_path / "out")
    code = main(["combine", str(folder), "--output", out, "--source-root", str(folder), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL, err
    assert f"lambda-coverage: skipped {folder / 'orders.cov'}: not a data file" in err


def test_quiet_prints_nothing_but_errors(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # coverage.py's data has no contexts: its HTML report warns "No contexts were measured".
    args = ["combine", str(folder), "--source-root", str(folder), "--format", "html"]
    loud = main([*args, "--output", str(tmp_path / "loud")])
    said = capsys.readouterr()
    assert loud == EXIT_OK
    assert "lambda-coverage: warning: coverage.py: No contexts were measured" in said.err
    assert "2 data file(s) of 1 function(s) merged, 5 file(s) not coverage data passed over." in (
        said.out.splitlines()
    )
    assert "CoverageWarning" not in said.err

    quiet = main([*args, "--output", str(tmp_path / "quiet"), "-q"])
    said = capsys.readouterr()
    assert quiet == EXIT_OK
    assert (said.out, said.err) == ("", "")

    # An error still gets through -q: here, a configuration file that is not there.
    missing = tmp_path / "missing.coveragerc"
    failed = main([*args, "--output", str(tmp_path / "failed"), "-q", "--rcfile", str(missing)])
    said = capsys.readouterr()
    assert failed != EXIT_OK
    assert said.out == ""
    assert said.err.startswith("lambda-coverage: ")
    assert str(missing) in said.err


def test_quiet_silences_the_old_version_flag_warning_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_data(tmp_path / "in" / "a.coverage", lines={"orders@9": {"app.py": {1}}})
    write_data(tmp_path / "in" / "b.coverage", lines={"orders@10": {"app.py": {2}}})
    out = tmp_path / "out"
    # --quiet after the flag it silences: what is said waits until every argument is read.
    args = ["combine", str(tmp_path / "in"), "-o", str(out), "--format", "data"]
    assert main([*args, "--version", "9", "-q"]) == EXIT_OK
    assert capsys.readouterr() == ("", "")
    assert read_data(out / ".coverage")[2] == {"orders@9"}


def test_parallel_files_under_s3_are_data_and_reports_pass_quietly(
    folder: Path, s3: S3Client, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A coverage.py user uploads the project folder as it is beside the wrapper's data.
    for name in [".coverage", ".coverage.host.123.XYZ", *NOT_DATA]:
        s3.put_object(Bucket=bucket, Key=f"coverage/ci/{name}", Body=(folder / name).read_bytes())
    s3.put_object(Bucket=bucket, Key="coverage/_health/x.probe", Body=b"ok")
    out = tmp_path / "out"
    args = ["combine", f"s3://{bucket}/coverage/", "-o", str(out), "--source-root", str(folder)]
    code = main([*args, "--format", "data,json", "-q"])
    assert (code, capsys.readouterr().err) == (EXIT_OK, "")
    assert read_data(out / ".coverage")[:2] == read_data(coverage_combine(folder, tmp_path))[:2]
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert summary["inputs"]["merged"] == 2
    assert [entry["input"] for entry in summary["inputs"]["not_data"]] == sorted(
        f"s3://{bucket}/coverage/ci/{name}" for name in NOT_DATA
    )
    # The probe is counted apart, never named.
    assert summary["inputs"]["skipped_not_data"] == len(NOT_DATA) + 1

    # An unknown object under the data prefix may be misnamed data: partial, and named.
    s3.put_object(Bucket=bucket, Key="coverage/ci/orders.cov", Body=b"?")
    assert main([*args, "-q"]) == EXIT_PARTIAL
    assert (
        f"skipped s3://{bucket}/coverage/ci/orders.cov: not a data file" in capsys.readouterr().err
    )
