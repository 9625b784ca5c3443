"""Inputs built to hurt the combiner: each is refused by name, and the rest still merges."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from coverage_combiner import CombineResult, combine
from coverage_combiner.cli import EXIT_PARTIAL, Progress, main
from coverage_combiner.inputs import LINKED
from coverage_wrapper.limits import MAX_LINE
from tests.combiner.conftest import key, write_data

BEYOND = (
    f"records line numbers beyond {MAX_LINE:,}, longer than any source file: "
    "corrupt or not written by coverage.py"
)


def test_a_line_number_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    # 200 KB of set bits would expand to 1.6 million Python ints per row.
    bomb = write_data(tmp_path / "in" / "bomb.coverage", lines={"f@1": {"a.py": {1}}})
    with sqlite3.connect(bomb) as db:
        db.execute("update line_bits set numbits = ?", (b"\xff" * 200_000,))
    far = write_data(tmp_path / "in" / "far.coverage", arcs={"f@1": {"a.py": {(-1, 1)}}})
    with sqlite3.connect(far) as db:
        db.execute("update arc set tono = ?", (MAX_LINE + 1,))
    good = write_data(tmp_path / "in" / "good.coverage", lines={"f@1": {"a.py": {MAX_LINE}}})

    result = combine([str(tmp_path / "in")])

    assert result.rejected == sorted([(str(bomb), BEYOND), (str(far), BEYOND)])
    assert result.merged.inputs == [str(good)]
    assert result.merged.lines_by_file() == {"a.py": {MAX_LINE}}


def test_a_local_output_inside_the_source_folder_is_never_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_data(tmp_path / key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["combine", ".", "-o", "reports/today", "--format", "data,json", "-q"]) == 0
    summary = json.loads((tmp_path / "reports/today/coverage-summary.json").read_text())
    assert summary["inputs"]["merged"] == 1
    assert summary["inputs"]["skipped"] == []
    assert capsys.readouterr().err == ""


def test_unrelated_objects_are_named_with_the_reason_and_make_the_run_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    write_data(source / key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    (source / "notes.txt").write_text("unrelated")
    # The wrapper's own health probes live under the prefix, in a function's
    # folder (and, from earlier wrappers, in {prefix}_health/): known, not a problem.
    probes = [
        source / "2026/11/25/orders/_health/c1-7.probe",
        source / "_health" / "c1-7.probe",
    ]
    # A .probe anywhere else is not the wrapper's.
    stray = source / "2026/11/25/orders/c1-7.probe"
    for path in [*probes, stray]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("ok")

    code = main(["combine", str(source), "-o", str(tmp_path / "out"), "--format", "data", "--json"])

    assert code == EXIT_PARTIAL
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    reason = "not a data file (the name neither ends in .coverage nor starts with .coverage.)"
    assert sorted(summary["inputs"]["skipped"], key=lambda s: s["input"]) == [
        {"input": str(stray), "reason": reason},
        {"input": str(source / "notes.txt"), "reason": reason},
    ]
    assert summary["inputs"]["merged"] == 1
    assert summary["inputs"]["skipped_not_data"] == 4  # the two above and the two probes
    assert f"lambda-coverage: skipped {source / 'notes.txt'}: {reason}" in captured.err
    assert not any(str(probe) in captured.err for probe in probes)


class Terminal(io.StringIO):
    """What the CLI writes progress to when stderr is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_shows_listing_fetching_and_merging_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for pid in range(1, 4):
        write_data(tmp_path / "in" / key(pid=pid), lines={"orders@$LATEST": {"app.py": {pid}}})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = ["combine", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--format", "data"]
    assert main([*args, "--json"]) == 0
    drawn = terminal.getvalue()
    # Each bar's last state, complete: every stage, every input.
    assert re.search(r"\rlisting: 3 files \[", drawn), drawn
    assert re.search(r"\rmerging: 100%\|#+\| 3/3 \[.*, fetched 3\]\n$", drawn), drawn
    assert json.loads(capsys.readouterr().out)["inputs"]["merged"] == 3  # stdout stays JSON

    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*args, "--quiet"]) == 0
    assert quiet.getvalue() == ""


def test_progress_before_the_totals_are_known() -> None:
    progress = Progress(Terminal(), enabled=True, interval=0)
    progress("listing", 1000, 0)
    progress("listing", 2000, 0)
    progress("fetching", 1, 4)
    progress.finish()
    drawn = progress.stream.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"\rlisting: 2000 files \[", drawn), drawn
    assert re.search(r"\rmerging:   0%\| +\| 0/4 \[.*, fetched 1\]\n$", drawn), drawn


def test_the_api_and_the_lambda_handler_never_import_the_progress_library() -> None:
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, coverage_combiner.api, coverage_combiner.lambda_handler; "
            "print('tqdm' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout == "False\n"


def test_symbolic_links_in_a_source_folder_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_data(outside / "elsewhere.coverage", lines={"f@1": {"x.py": {9}}})
    source = tmp_path / "in"
    write_data(source / "real.coverage", lines={"f@1": {"a.py": {1}}})
    (source / "linked.coverage").symlink_to(outside / "elsewhere.coverage")
    (source / "linked-folder").symlink_to(outside, target_is_directory=True)

    empty = tmp_path / "empty"
    empty.mkdir()

    result = combine([str(source), str(empty)])

    assert result.merged.inputs == [str(source / "real.coverage")]
    assert result.merged.lines_by_file() == {"a.py": {1}}
    # Passed over, but named: the run is partial, and the empty source is said.
    assert result.skipped == [
        (str(source / "linked-folder"), LINKED),
        (str(source / "linked.coverage"), LINKED),
    ]
    assert result.partial
    assert result.warnings == [f"{empty}: no data file there"]


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            # An aggregate over an endless recursion never returns if it is ever read.
            "drop table coverage_schema; create view coverage_schema as "
            "with recursive r(n) as (select 1 union all select n + 1 from r) "
            "select max(n) as version from r",
            "not a plain coverage.py data file: it defines views or triggers "
            "(coverage_schema), which coverage.py never writes",
        ),
        (
            "update coverage_schema set version = 'seven'",
            "written by another coverage.py (data schema seven; this combiner reads schema 7): "
            "combine it with a matching coverage.py",
        ),
        (
            "drop table coverage_schema",
            "not a coverage.py data file: no coverage_schema table",
        ),
    ],
    ids=["endless-view", "text-version", "no-schema-table"],
)
def test_a_doctored_schema_table_is_refused_without_being_run(
    tmp_path: Path, statement: str, reason: str
) -> None:
    doctored = write_data(tmp_path / "in" / "doctored.coverage", lines={"f@1": {"a.py": {1}}})
    with sqlite3.connect(doctored) as db:
        db.executescript(statement)
    write_data(tmp_path / "in" / "good.coverage", lines={"f@1": {"a.py": {2}}})
    outcome: list[CombineResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(combine([str(tmp_path / "in")])), daemon=True
    )
    worker.start()
    worker.join(timeout=20)
    assert outcome, "the combiner ran the file's own query"
    assert outcome[0].rejected == [(str(doctored), reason)]
    assert outcome[0].merged.lines_by_file() == {"a.py": {2}}
