"""Merging: exactly the union of the inputs, whatever the inputs are."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage_combiner import CombineOptions, PathRemapper, combine, merge
from coverage_combiner.merge import Merger
from coverage_combiner.outputs import resolve_sources, write_data_file
from coverage_combiner.reader import parse_arcs
from tests.combiner.conftest import key, read_data, write_data

FILES = ["app.py", "pkg/mod.py", "lib/util.py"]
arc = st.tuples(st.integers(-5, 60), st.integers(-5, 60)).filter(lambda a: a[0] != 0 and a[1] != 0)
file_arcs = st.dictionaries(
    st.sampled_from(FILES), st.sets(arc, min_size=1, max_size=15), min_size=1
)
file_lines = st.dictionaries(
    st.sampled_from(FILES), st.sets(st.integers(1, 80), min_size=1, max_size=20), min_size=1
)
contexts = st.sampled_from(["orders@1", "orders@$LATEST", "billing@3"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(inputs=st.lists(st.tuples(contexts, file_arcs), min_size=1, max_size=6))
def test_merged_arcs_are_the_union_of_the_inputs(
    tmp_path: Path, inputs: list[tuple[str, dict[str, set[tuple[int, int]]]]]
) -> None:
    folder = tmp_path / f"in-{abs(hash(str(inputs)))}"
    expected: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for number, (context, files) in enumerate(inputs):
        write_data(folder / f"{number}.coverage", arcs={context: files})
        for name, file_arc_set in files.items():
            expected.setdefault((context.split("@")[0], name), set()).update(file_arc_set)
    result = combine([str(folder)], CombineOptions(version="all"))
    out = tmp_path / f"out-{folder.name}" / ".coverage"
    with _working_folder(tmp_path):
        write_data_file(result.merged, out, resolve_sources(result.merged, PathRemapper()))
    _, arcs, merged_contexts = read_data(out)
    # Paths come out absolute (coverage.py matches data to source by absolute
    # path), and each function's files apart from the other's.
    assert arcs == _per_function(tmp_path, expected)
    assert merged_contexts == {context for context, _ in inputs}
    assert result.rejected == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(inputs=st.lists(st.tuples(contexts, file_lines), min_size=1, max_size=6))
def test_merged_lines_are_the_union_of_the_inputs(
    tmp_path: Path, inputs: list[tuple[str, dict[str, set[int]]]]
) -> None:
    folder = tmp_path / f"in-{abs(hash(str(inputs)))}"
    expected: dict[tuple[str, str], set[int]] = {}
    for number, (context, files) in enumerate(inputs):
        write_data(folder / f"{number}.coverage", lines={context: files})
        for name, file_line_set in files.items():
            expected.setdefault((context.split("@")[0], name), set()).update(file_line_set)
    result = combine([str(folder)], CombineOptions(version="all"))
    out = tmp_path / f"out-{folder.name}" / ".coverage"
    with _working_folder(tmp_path):
        write_data_file(result.merged, out, resolve_sources(result.merged, PathRemapper()))
    lines, _, _ = read_data(out)
    assert lines == _per_function(tmp_path, expected)


V = TypeVar("V")


def _per_function(folder: Path, expected: dict[tuple[str, str], set[V]]) -> dict[str, set[V]]:
    """Where each function's files go when no source is found: apart when there are several."""
    several = len({function for function, _ in expected}) > 1
    return {
        str(folder / function / name) if several else str(folder / name): values
        for (function, name), values in expected.items()
    }


@contextlib.contextmanager
def _working_folder(folder: Path) -> Iterator[None]:
    # Sources are looked for under the working folder: an empty one finds none.
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def test_only_the_newest_snapshot_of_a_process_is_read_and_the_result_is_the_same(
    tmp_path: Path,
) -> None:
    root = tmp_path / "bucket"
    # Cumulative snapshots of one process, and one of another process.
    write_data(root / key(seq=1), arcs={"orders@$LATEST": {"app.py": {(-1, 1), (1, 2)}}})
    write_data(root / key(seq=2), arcs={"orders@$LATEST": {"app.py": {(-1, 1), (1, 2), (2, 3)}}})
    write_data(root / key(pid=8, seq=1), arcs={"orders@$LATEST": {"app.py": {(2, 5)}}})
    newest = combine([str(root)])
    every = combine([str(root)], CombineOptions(newest_snapshot_only=False))
    assert newest.superseded == 1
    assert every.superseded == 0
    assert len(newest.merged.inputs) == 2
    assert (
        newest.merged.arcs_by_file()
        == every.merged.arcs_by_file()
        == {"app.py": {(-1, 1), (1, 2), (2, 3), (2, 5)}}
    )


def test_filters_by_function_and_day(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    write_data(
        root / key(function="orders", day="2026/11/24"), lines={"orders@$LATEST": {"o.py": {1}}}
    )
    write_data(
        root / key(function="orders", day="2026/11/25", pid=2),
        lines={"orders@$LATEST": {"o.py": {2}}},
    )
    write_data(
        root / key(function="billing", day="2026/11/25"), lines={"billing@$LATEST": {"b.py": {3}}}
    )
    from datetime import date

    only_orders = combine([str(root)], CombineOptions(function="orders"))
    assert only_orders.merged.lines_by_file() == {"o.py": {1, 2}}
    one_day = combine(
        [str(root)], CombineOptions(since=date(2026, 11, 25), until=date(2026, 11, 25))
    )
    assert one_day.merged.lines_by_file() == {"o.py": {2}, "b.py": {3}}


def test_versions_are_not_mixed_silently(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_data(root / "a.coverage", lines={"orders@3": {"app.py": {1, 2}}})
    write_data(root / "b.coverage", lines={"orders@4": {"app.py": {1, 5}}})
    write_data(root / "c.coverage", lines={"billing@1": {"bill.py": {9}}})
    latest = combine([str(root)])
    assert latest.merged.lines_by_file() == {"app.py": {1, 5}, "bill.py": {9}}
    assert latest.versions.kept == {"orders": ["4"], "billing": ["1"]}
    assert latest.warnings == [
        "orders: data from versions 3, 4; reporting 4 only (--function-version latest); "
        "use --function-version all to merge them or --function-version V to choose"
    ]
    chosen = combine([str(root)], CombineOptions(version="3"))
    assert chosen.merged.lines_by_file() == {"app.py": {1, 2}}
    everything = combine([str(root)], CombineOptions(version="all"))
    assert everything.merged.lines_by_file() == {"app.py": {1, 2, 5}, "bill.py": {9}}
    assert everything.warnings == []


def test_a_lost_input_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "in"
    kept = write_data(root / key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    lost = write_data(root / key(pid=2), lines={"orders@$LATEST": {"app.py": {2}}})

    def remove_after_listing(stage: str, done: int, total: int) -> None:
        if stage == "listing":
            lost.unlink()

    result = combine([str(root)], progress=remove_after_listing)
    assert result.merged.lines_by_file() == {"app.py": {1}}
    assert result.merged.inputs == [str(kept)]
    assert [(name, reason.split(":")[0]) for name, reason in result.rejected] == [
        (str(lost), "could not be fetched")
    ]


def test_version_order_is_numeric_and_latest_is_newest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_combiner.cli import EXIT_OK, main

    root = tmp_path / "in"
    write_data(root / key(version="9"), lines={"orders@9": {"app.py": {9}}})
    write_data(root / key(version="10", pid=2), lines={"orders@10": {"app.py": {10}}})
    numeric = combine([str(root)])
    assert numeric.versions.kept == {"orders": ["10"]}  # 10 is newer than 9, not "1" < "9"
    write_data(root / key(version="LATEST", pid=3), lines={"orders@$LATEST": {"app.py": {1}}})
    out = tmp_path / "out"
    assert main(["combine", str(root), "-o", str(out), "--format", "data"]) == EXIT_OK
    assert capsys.readouterr().err == (
        "lambda-coverage: warning: orders: data from versions 9, 10, $LATEST; reporting "
        "$LATEST only (--function-version latest); use --function-version all to merge them "
        "or --function-version V to choose\n"
    )
    assert read_data(out / ".coverage")[2] == {"orders@$LATEST"}
    assert (
        main(
            [
                "combine",
                str(root),
                "-o",
                str(out),
                "--format",
                "data",
                "--function-version",
                "LATEST",
            ]
        )
        == EXIT_OK
    )
    assert read_data(out / ".coverage")[2] == {"orders@$LATEST"}
    assert (
        main(
            ["combine", str(root), "-o", str(out), "--format", "data", "--function-version", "all"]
        )
        == EXIT_OK
    )
    assert capsys.readouterr().err == ""
    assert read_data(out / ".coverage")[2] == {"orders@$LATEST", "orders@9", "orders@10"}
    assert (
        main(["combine", str(root), "-o", str(out), "--format", "data", "--function-version", "7"])
        == 1
    )
    assert capsys.readouterr().err == (
        "lambda-coverage: warning: orders: no data of version 7 (it has 9, 10, $LATEST); "
        "nothing is reported for it\n"
        f"lambda-coverage: error: no coverage data under {root} with --function-version 7 "
        "(3 data file(s) listed); check the source and the filters, or pass --allow-empty to "
        "write an empty report on purpose\n"
    )


def test_groups_that_keep_recurring_stay_known_when_memory_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the memory bound, only groups not seen for a while are parsed again."""
    common = {"app.py": {(-1, 1), (1, 2), (2, -1)}}
    # Every input repeats the common group next to one of its own.
    files = [
        write_data(
            tmp_path / f"{n}.coverage",
            arcs={"orders@1": common, f"orders@{n + 2}": {"app.py": {(-1, n + 3)}}},
        ).read_bytes()
        for n in range(12)
    ]
    parsed: list[str] = []

    def counting(group: str) -> list[tuple[int, int]]:
        parsed.append(group)
        return parse_arcs(group)

    # Room for about two groups per generation: the generations turn every input.
    monkeypatch.setattr(merge, "KNOWN_GROUP_CHARS", 4 * len("-1 1 2,1 2 -1"))
    monkeypatch.setattr(merge, "parse_arcs", counting)
    merger = Merger()
    for number, data in enumerate(files):
        merger.add_bytes(f"{number}.coverage", data)
    result = merger.result()

    assert parsed.count("-1 1 2,1 2 -1") == 1
    assert len(parsed) == 13
    assert result.arcs == {
        ("orders@1", "app.py"): common["app.py"],
        **{(f"orders@{n + 2}", "app.py"): {(-1, n + 3)} for n in range(12)},
    }


def test_the_old_version_flag_still_filters_and_says_it_is_deprecated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_combiner.cli import main

    root = tmp_path / "in"
    write_data(root / "a.coverage", lines={"orders@9": {"app.py": {1}}})
    write_data(root / "b.coverage", lines={"orders@10": {"app.py": {2}}})
    out = tmp_path / "out"
    assert main(["combine", str(root), "-o", str(out), "--format", "data", "--version", "9"]) == 0
    assert capsys.readouterr().err == (
        "lambda-coverage: warning: combine --version is deprecated and will be removed: use "
        "--function-version (lambda-coverage --version prints the tool's version)\n"
    )
    assert read_data(out / ".coverage")[2] == {"orders@9"}
    assert main(["combine", "--help"]) == 0
    usage = capsys.readouterr().out
    assert "--function-version" in usage
    assert "--version" not in usage.replace("--function-version", "")
