"""The command line: bad inputs reported and skipped, outputs, remapping, exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
from coverage import Coverage

from coverage_combiner.cli import (
    EXIT_BELOW_THRESHOLD,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    main,
)
from coverage_combiner.errors import CombinerError, NoDataError
from coverage_combiner.outputs import safe_target
from tests.combiner.conftest import key, read_data, write_data

APP = "def handler(event, context):\n    if event:\n        return 1\n    return 2\n"


@pytest.fixture
def measured(tmp_path: Path) -> tuple[Path, Path]:
    """Two real data files of ``app.py`` (relative paths, as the wrapper writes them)."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text(APP)
    inputs = tmp_path / "inputs"
    # What the zero-code wrapper records: the module's own line, then the calls.
    module = {(-1, 1), (1, -1)}
    write_data(
        inputs / key(pid=1),
        arcs={"orders@$LATEST": {"app.py": module | {(-1, 2), (2, 3), (3, -1)}}},
    )
    write_data(
        inputs / key(pid=2),
        arcs={"orders@$LATEST": {"app.py": module | {(-1, 2), (2, 4), (4, -1)}}},
    )
    return source, inputs


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_reports_from_a_local_folder(
    measured: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, inputs = measured
    out = tmp_path / "out"
    every_format = "data,json,xml,lcov,html,markdown"
    code = main(
        [
            "combine",
            str(inputs),
            "--output",
            str(out),
            "--source-root",
            str(source),
            "--format",
            every_format,
            "--fail-under",
            "100",
        ]
    )
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == [
        ".coverage",
        "coverage-summary.json",
        "coverage-summary.md",
        "coverage.lcov",
        "coverage.xml",
        "html",
    ]
    lines, arcs, contexts = read_data(out / ".coverage")
    app = str(source / "app.py")
    assert lines == {app: {1, 2, 3, 4}}
    assert arcs == {app: {(-1, 1), (1, -1), (-1, 2), (2, 3), (3, -1), (2, 4), (4, -1)}}
    assert contexts == {"orders@$LATEST"}
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert summary["totals"]["percent_covered"] == 100.0
    assert summary["functions"]["orders"]["percent_covered"] == 100.0
    assert summary["inputs"]["merged"] == 2
    cov = Coverage(data_file=str(out / ".coverage"), config_file=False)
    cov.load()
    assert cov.report(file=io.StringIO()) == 100.0
    assert "orders@$LATEST" in (out / "html" / "index.html").read_text() or any(
        "orders@$LATEST" in p.read_text() for p in (out / "html").glob("*.html")
    )
    assert "SF:" in (out / "coverage.lcov").read_text()
    # The terminal gets aligned tables; Markdown goes only to its file.
    printed = capsys.readouterr().out
    shown = str(source / "app.py")
    assert printed.splitlines()[:5] == [
        f"{'Name':<{len(shown)}}   Stmts   Miss   Branch   BrPart    Cover",
        "-" * (len(shown) + 42),
        f"{shown}       4      0        2        0   100.0%",
        "-" * (len(shown) + 42),
        f"{'TOTAL':<{len(shown)}}       4      0        2        0   100.0%",
    ]
    assert "**" not in printed
    assert "| ---" not in printed
    assert "**100.0%** covered" in (out / "coverage-summary.md").read_text()


def test_bad_inputs_are_reported_skipped_and_left_alone(
    measured: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, inputs = measured
    bad = inputs / "bad"
    bad.mkdir()
    (bad / "empty.coverage").write_bytes(b"")
    (bad / "text.coverage").write_text("hello, not a database")
    good = (inputs / key(pid=1)).read_bytes()
    (bad / "truncated.coverage").write_bytes(good[: len(good) // 3])
    other = sqlite3.connect(bad / "other.coverage")
    other.execute("create table t (x)")
    other.commit()
    other.close()
    old = bad / "old-schema.coverage"
    write_data(old, lines={"orders@$LATEST": {"app.py": {2}}})
    with sqlite3.connect(old) as db:
        db.execute("update coverage_schema set version = 6")
    write_data(bad / "lines.coverage", lines={"orders@$LATEST": {"app.py": {2}}})
    viewed = write_data(bad / "view.coverage", arcs={"orders@$LATEST": {"app.py": {(1, 2)}}})
    with sqlite3.connect(viewed) as db:
        db.execute("drop table arc")
        db.execute(
            "create view arc as select 1 as file_id, 1 as context_id, 9 as fromno, 9 as tono"
        )
    triggered = write_data(bad / "trigger.coverage", arcs={"orders@$LATEST": {"app.py": {(1, 2)}}})
    with sqlite3.connect(triggered) as db:
        db.execute("create trigger t after insert on file begin delete from arc; end")
    no_arc = write_data(bad / "no-arc.coverage", arcs={"orders@$LATEST": {"app.py": {(1, 2)}}})
    with sqlite3.connect(no_arc) as db:
        db.execute("drop table arc")
    (bad / "README.txt").write_text("unrelated")
    before = digest(inputs)

    code = main(
        [
            "combine",
            str(inputs),
            "--output",
            str(tmp_path / "out"),
            "--source-root",
            str(source),
            "--json",
        ]
    )
    assert code == EXIT_PARTIAL
    summary = json.loads(capsys.readouterr().out)
    reasons = {Path(r["input"]).name: r["reason"] for r in summary["inputs"]["rejected"]}
    assert reasons == {
        "empty.coverage": "empty file (0 bytes)",
        "text.coverage": "not a coverage.py data file: not an SQLite database",
        "truncated.coverage": reasons["truncated.coverage"],
        "other.coverage": "not a coverage.py data file: no coverage_schema table",
        "old-schema.coverage": "written by another coverage.py (data schema 6; this combiner reads "
        "schema 7): combine it with a matching coverage.py",
        "view.coverage": "not a plain coverage.py data file: it defines views or triggers (arc), "
        "which coverage.py never writes",
        "trigger.coverage": "not a plain coverage.py data file: it defines views or triggers (t), "
        "which coverage.py never writes",
        "no-arc.coverage": "not a coverage.py data file: no arc table(s) (schema 7 has "
        "coverage_schema, meta, file, context, line_bits, arc)",
    }
    assert reasons["truncated.coverage"].startswith(("truncated or corrupt", "cannot be opened"))
    assert summary["inputs"]["skipped_not_data"] == 1
    # Line data among branch data is merged, not rejected (see test_mixed_kinds.py).
    assert summary["inputs"]["merged"] == 3
    assert summary["totals"]["percent_covered"] == 100.0  # the good ones still merged
    assert digest(inputs) == before  # nothing deleted or modified


def test_size_cap(measured: tuple[Path, Path]) -> None:
    from coverage_combiner import CombineOptions, combine

    _, inputs = measured
    with pytest.raises(NoDataError, match=r"\(2 data file\(s\) listed, 2 rejected\)") as caught:
        combine([str(inputs)], CombineOptions(max_bytes=1000))
    result = caught.value.result
    assert result is not None
    assert [reason for _, reason in result.rejected] == [
        f"{(inputs / key(pid=1)).stat().st_size} bytes is over the size cap of 1000 (--max-bytes)",
        f"{(inputs / key(pid=2)).stat().st_size} bytes is over the size cap of 1000 (--max-bytes)",
    ]


def test_missing_source_names_the_files_and_the_flag(
    measured: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, inputs = measured
    out = tmp_path / "out"
    code = main(
        ["combine", str(inputs), "--output", str(out), "--source-root", str(tmp_path / "nowhere")]
    )
    assert code == EXIT_ERROR
    error = capsys.readouterr().err
    assert (
        f"the source of 1 measured file(s) is not found: {tmp_path / 'nowhere' / 'app.py'}" in error
    )
    assert "--source-root" in error
    assert "--source-zip" in error
    # The data file is still written, whole; no report half-written, no temporary left.
    assert sorted(p.name for p in out.iterdir()) == [".coverage", "coverage-summary.json"]


def test_source_read_from_the_deployment_zip(measured: tuple[Path, Path], tmp_path: Path) -> None:
    source, inputs = measured
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.write(source / "app.py", "app.py")
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(inputs),
            "--output",
            str(out),
            "--source-zip",
            str(bundle),
            "--format",
            "data,xml",
        ]
    )
    assert code == EXIT_OK
    lines, _, _ = read_data(out / ".coverage")
    assert lines == {f"{bundle}/app.py": {1, 2, 3, 4}}
    assert 'line-rate="1"' in (out / "coverage.xml").read_text()


def test_paths_rules_and_per_function_roots(tmp_path: Path) -> None:
    from coverage_combiner import PathRemapper

    remap = PathRemapper.build(
        paths=["/build/=/src/"], source_roots=["/checkout", "orders=/orders-src"]
    )
    relative = PathRemapper.build(source_roots=["checkout"])
    assert relative.map("app.py") == str(Path("checkout/app.py").resolve())
    assert remap.map("/build/x.py", "billing") == "/src/x.py"
    assert remap.map("/var/task/app.py", "billing") == "/checkout/app.py"
    assert remap.map("app.py", "orders") == "/orders-src/app.py"
    with pytest.raises(ValueError, match="--paths 'nope' is not FROM=TO"):
        PathRemapper.build(paths=["nope"])


def test_fail_under(
    measured: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, inputs = measured
    (inputs / key(pid=2)).unlink()
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(tmp_path / "out"),
            "--source-root",
            str(source),
            "--fail-under",
            "90",
            "-q",
        ]
    )
    assert code == EXIT_BELOW_THRESHOLD
    captured = capsys.readouterr()
    assert captured.out == ""
    # Lines 1, 2, 3 of 4 and one branch of two: (3 + 1) / (4 + 2).
    assert "total coverage 66.67% is below --fail-under 90" in captured.err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["combine"]) == EXIT_USAGE
    assert main(["combine", str(tmp_path), "-o", "x", "--since", "yesterday"]) == EXIT_USAGE
    assert main(["combine", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == EXIT_ERROR
    assert "is neither a file, a folder nor s3://bucket/prefix" in capsys.readouterr().err
    assert (
        main(["combine", str(tmp_path), "-o", str(tmp_path / "o"), "--format", "pdf"]) == EXIT_USAGE
    )
    assert "unknown format(s) pdf: choose from data, json" in capsys.readouterr().err


def test_outputs_cannot_escape_their_folder(tmp_path: Path) -> None:
    assert safe_target(tmp_path, "a/b.json") == (tmp_path / "a" / "b.json").resolve()
    with pytest.raises(CombinerError, match=r"refusing to write '\.\./\.\./x' outside"):
        safe_target(tmp_path, "../../x")


def test_hostile_names_write_nothing_outside_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured paths and input names full of ``..`` still write only under ``--output``."""
    work = tmp_path / "a" / "b" / "c"
    source = work / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "app.py").write_text(APP)
    (tmp_path / "a" / "evil.py").write_text(APP)
    inputs = work / "inputs"
    write_data(
        inputs / "2026/11/25/..%2F..%2Fx/LATEST/c-1-000001.coverage",
        lines={"orders@$LATEST": {"../../../evil.py": {1, 2}, "pkg/../pkg/app.py": {1}}},
    )
    out = work / "out"
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)}
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(out),
            "--source-root",
            str(source),
            "-q",
            "--format",
            "data,json,xml,lcov,html,markdown",
        ]
    )
    # The path that climbs out of the source is refused (never read), and said so.
    assert code == EXIT_PARTIAL
    assert "refused measured path '../../../evil.py' of orders" in capsys.readouterr().err
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)}
    assert after == before  # every new file is inside the output folder
    assert len(list((out / "html").glob("*.html"))) >= 3


def test_output_prefixes_with_dot_dot_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_combiner import combine_coverage_files

    inputs = tmp_path / "in"
    write_data(inputs / key(), lines={"orders@$LATEST": {"app.py": {1}}})
    code = main(["combine", str(inputs), "-o", "s3://bucket/reports/../../x", "--format", "data"])
    assert code == EXIT_ERROR
    assert "refusing to write under 's3://bucket/reports/../../x': it contains '..'" in (
        capsys.readouterr().err
    )
    with pytest.raises(CombinerError, match=r"output_key '\.\./x\.json' contains '\.\.'"):
        combine_coverage_files("bucket", "coverage/", "../x.json")


def test_progress_only_on_a_terminal(
    measured: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, inputs = measured
    main(
        [
            "combine",
            str(inputs),
            "-o",
            str(tmp_path / "out"),
            "--source-root",
            str(source),
            "--format",
            "data",
        ]
    )
    assert "merging" not in capsys.readouterr().err


def test_no_data_is_an_error_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not data")
    out = tmp_path / "out"
    args = ["combine", str(tmp_path / "in"), "-o", str(out), "--format", "data,json", "-q"]
    # A CI gate pointed at the wrong place fails, and says where it looked.
    assert main([*args, "--function", "orders", "--since", "2026-01-02"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"lambda-coverage: skipped {tmp_path / 'in' / 'notes.txt'}: not a data file (the name "
        "neither ends in .coverage nor starts with .coverage.)\n"
        f"lambda-coverage: error: no coverage data under {tmp_path / 'in'} with --function "
        "orders --since 2026-01-02 (0 data file(s) listed, 1 other object(s)); check the "
        "source and the filters, or pass --allow-empty to write an empty report on purpose\n"
    )
    assert not out.exists()
    # On purpose, an empty but valid report.
    assert main([*args, "--allow-empty"]) == EXIT_PARTIAL
    assert read_data(out / ".coverage") == ({}, {}, set())


def test_per_function_figures_with_a_relative_source_root(
    measured: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, inputs = measured
    (inputs / key(pid=2)).unlink()
    monkeypatch.chdir(tmp_path)
    code = main(["combine", str(inputs), "-o", "out", "--source-root", "orders=src", "--json"])
    assert code == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    # Lines 1, 2 and 3 of 4 ran in this function.
    assert summary["functions"]["orders"]["statements"] == 4
    assert summary["functions"]["orders"]["percent_covered"] == 75.0
    assert summary["files"] == {
        "src/app.py": {
            "statements": 4,
            "covered_lines": 3,
            "missing_lines": 1,
            "percent_covered": 66.67,
            "branches": 2,
            "covered_branches": 1,
            "partial_branches": 1,
        }
    }


def test_a_failing_report_publishes_nothing_half_made(
    measured: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from coverage.exceptions import CoverageException, NoSource

    source, inputs = measured
    out = tmp_path / "out"
    args = [
        "combine",
        str(inputs),
        "-o",
        str(out),
        "--source-root",
        str(source),
        "-q",
        "--format",
        "data,json,xml,html",
    ]
    assert main(args) == EXIT_OK
    before = digest(out)

    def broken(self: Coverage, **_: object) -> float:
        raise CoverageException("disk on fire")

    # The XML report is made before the HTML one: it must not be published alone.
    monkeypatch.setattr(Coverage, "html_report", broken)
    assert main(args) == EXIT_ERROR
    assert "coverage.py could not write the reports: disk on fire" in capsys.readouterr().err
    assert digest(out) == before  # the previous run's outputs, whole; no temporaries

    def vanished(self: Coverage, **_: object) -> float:
        raise NoSource(f"No source for code: '{source / 'app.py'}'.")

    monkeypatch.setattr(Coverage, "html_report", vanished)
    assert main(args) == EXIT_ERROR
    error = capsys.readouterr().err
    assert f"is not found: {source / 'app.py'}. Point --source-root" in error
    after = digest(out)
    # Data and summary are new; the reports that need the source are the old ones, whole.
    assert sorted(p.name for p in out.iterdir()) == [
        ".coverage",
        "coverage-summary.json",
        "coverage.xml",
        "html",
    ]
    reports = ("coverage.xml", "/html/")
    assert {n: v for n, v in after.items() if n.endswith(reports[0]) or reports[1] in n} == {
        n: v for n, v in before.items() if n.endswith(reports[0]) or reports[1] in n
    }
    assert any(reports[1] in n for n in before)
