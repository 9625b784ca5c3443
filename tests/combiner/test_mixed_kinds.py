"""Line data and branch data combine: neither kind is rejected for the other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coverage_combiner import CombineOptions, PathRemapper, combine
from coverage_combiner.merge import Merged, Merger
from coverage_combiner.outputs import resolve_sources, write_data_file
from tests.combiner.conftest import read_data, write_data


def test_line_inputs_among_branch_inputs_enter_as_entry_arcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "in"
    write_data(root / "a.coverage", arcs={"orders@1": {"app.py": {(-1, 1), (1, 2), (2, -1)}}})
    write_data(root / "b.coverage", arcs={"orders@1": {"app.py": {(1, 3)}}})
    # The same function measured without branches, and another function too.
    write_data(root / "c.coverage", lines={"orders@1": {"app.py": {1, 7}}})
    write_data(root / "d.coverage", lines={"billing@2": {"bill.py": {4, 5}}})

    result = combine([str(root)], CombineOptions(version="all"))

    assert result.rejected == []
    assert len(result.merged.inputs) == 4
    assert result.merged.has_arcs
    assert result.merged.arcs == {
        ("orders@1", "app.py"): {(-1, 1), (1, 2), (2, -1), (1, 3), (-7, 7)},
        ("billing@2", "bill.py"): {(-4, 4), (-5, 5)},
    }
    # orders@1 has branch data too; billing@2 only line data.
    assert result.merged.line_contexts == {"billing@2"}
    out = tmp_path / "out" / ".coverage"
    # No source anywhere under the working folder: each function's files stay apart.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    write_data_file(result.merged, out, resolve_sources(result.merged, PathRemapper()))
    lines, arcs, contexts = read_data(out)
    app, bill = os.path.abspath("orders/app.py"), os.path.abspath("billing/bill.py")
    assert lines == {app: {1, 2, 3, 7}, bill: {4, 5}}
    assert arcs[bill] == {(-4, 4), (-5, 5)}
    assert contexts == {"orders@1", "billing@2"}


def test_line_data_alone_stays_line_data_and_every_context_is_a_line_context(
    tmp_path: Path,
) -> None:
    root = tmp_path / "in"
    write_data(root / "a.coverage", lines={"orders@1": {"app.py": {1, 2}}})
    write_data(root / "b.coverage", lines={"billing@1": {"bill.py": {3}}})

    merged = combine([str(root)]).merged

    assert not merged.has_arcs
    assert merged.lines == {("orders@1", "app.py"): {1, 2}, ("billing@1", "bill.py"): {3}}
    assert merged.arcs == {}
    assert merged.line_contexts == {"orders@1", "billing@1"}


def test_inputs_without_rows_never_decide_the_kind(tmp_path: Path) -> None:
    empty_branch = write_data(tmp_path / "empty-branch.coverage", arcs={"f@1": {}})
    empty_lines = write_data(tmp_path / "empty-lines.coverage", lines={"f@1": {}})
    lines = write_data(tmp_path / "lines.coverage", lines={"f@1": {"a.py": {3}}})
    arcs = write_data(tmp_path / "arcs.coverage", arcs={"f@1": {"a.py": {(-1, 1)}}})

    def merge(*paths: Path) -> Merged:
        merger = Merger()
        for path in paths:
            merger.add_bytes(path.name, path.read_bytes())
        return merger.result()

    line_result = merge(empty_branch, lines)
    assert (line_result.has_arcs, line_result.lines) == (False, {("f@1", "a.py"): {3}})
    branch_result = merge(empty_lines, arcs)
    assert (branch_result.has_arcs, branch_result.arcs) == (True, {("f@1", "a.py"): {(-1, 1)}})
    assert branch_result.line_contexts == set()
    nothing = merge(empty_branch, empty_lines)
    assert (nothing.has_arcs, nothing.arcs, nothing.lines) == (False, {}, {})


def test_version_choice_keeps_line_contexts_of_the_versions_kept(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_data(root / "a.coverage", arcs={"orders@2": {"app.py": {(-1, 1)}}})
    write_data(root / "b.coverage", lines={"orders@1": {"app.py": {5}}})
    write_data(root / "c.coverage", lines={"billing@1": {"bill.py": {6}}})

    latest = combine([str(root)]).merged
    every = combine([str(root)], CombineOptions(version="all")).merged
    only_billing = combine([str(root)], CombineOptions(version="all", function="billing")).merged

    assert latest.line_contexts == {"billing@1"}
    assert latest.arcs == {("orders@2", "app.py"): {(-1, 1)}, ("billing@1", "bill.py"): {(-6, 6)}}
    assert every.line_contexts == {"orders@1", "billing@1"}
    assert only_billing.line_contexts == {"billing@1"}
    assert only_billing.arcs == {("billing@1", "bill.py"): {(-6, 6)}}


def test_a_fleet_with_one_function_measured_without_branches_reports_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_combiner.cli import EXIT_OK, main

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "in"
    for pid in range(1, 4):
        write_data(root / f"{pid}.coverage", arcs={"orders@1": {"app.py": {(-1, 1), (1, -1)}}})
    write_data(root / "4.coverage", lines={"billing@2": {"bill.py": {4, 5}}})
    assert main(["combine", str(root), "-o", "out", "--format", "data,json", "--json"]) == EXIT_OK
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["inputs"]["merged"] == 4
    assert summary["inputs"]["rejected"] == []
    assert {name: f["branch"] for name, f in summary["functions"].items()} == {
        "billing": False,
        "orders": True,
    }
    assert captured.err == (
        "lambda-coverage: warning: billing: measured without branches "
        "(COVERAGE_BRANCH_COVERAGE=false); their lines count as measured, their branches as "
        "not taken: measure them with branches for branch figures\n"
    )
    _, arcs, _ = read_data(tmp_path / "out" / ".coverage")
    assert arcs == {
        str(tmp_path / "orders" / "app.py"): {(-1, 1), (1, -1)},
        str(tmp_path / "billing" / "bill.py"): {(-4, 4), (-5, 5)},
    }
