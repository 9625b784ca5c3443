"""The shapes the memory bounds are measured on merge exactly as ``coverage combine`` merges them.

Many contexts over several inputs, and line data merged into branch data
(which ``coverage combine`` refuses: there its lines are compared, and the
arcs of the branch part), each compared as exact line and arc sets per
context and file, read through coverage.py's public data API.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

from coverage import Coverage, CoverageData

from coverage_combiner.combine import CombineOptions, combine
from coverage_combiner.outputs import write_data_file
from tests.combiner.conftest import write_data

Arc = tuple[int, int]
#: Per context, per file: lines or arcs.
Table = dict[str, dict[str, set[int]]]
ArcTable = dict[str, dict[str, set[Arc]]]


def _per_context(path: Path) -> tuple[Table, ArcTable]:
    """Lines and arcs per context and file, through coverage.py's public API."""
    data = CoverageData(basename=str(path))
    data.read()
    lines: Table = {}
    arcs: ArcTable = {}
    for context in data.measured_contexts():
        data.set_query_contexts([f"^{re.escape(context)}$"])
        for name in data.measured_files():
            found = set(data.lines(name) or ())
            if found:
                lines.setdefault(context, {})[name] = found
            if data.has_arcs() and (measured := set(data.arcs(name) or ())):
                arcs.setdefault(context, {})[name] = measured
    return lines, arcs


def _coverage_combine(inputs: list[Path], out: Path) -> Path:
    """``coverage combine --keep`` of copies of ``inputs`` into ``out``."""
    folder = out.parent / f"{out.name}-inputs"
    folder.mkdir()
    copies = [shutil.copy(path, folder / f".coverage.{i}") for i, path in enumerate(inputs)]
    cov = Coverage(data_file=str(out), config_file=False)
    cov.combine([str(copy) for copy in copies], keep=True)
    cov.save()
    return out


def _lambda_coverage_combine(folder: Path, out: Path) -> Path:
    result = combine([str(folder)], CombineOptions(version="all", processes=1))
    write_data_file(result.merged, out, None)
    return out


def _random_arcs(rng: random.Random) -> set[Arc]:
    return {(rng.randint(-3, 60), rng.randint(1, 60)) for _ in range(rng.randint(1, 12))}


def test_many_contexts_over_several_inputs_merge_as_coverage_combine_merges_them(
    tmp_path: Path,
) -> None:
    rng = random.Random(17)
    inputs = []
    # Overlapping windows of 200 run-id contexts in each of four inputs.
    for i in range(4):
        contexts = [f"fn@1|invocation;run=r{n:04d}" for n in range(i * 100, i * 100 + 200)]
        files = {
            context: {name: _random_arcs(rng) for name in ("app.py", "lib/db.py")}
            for context in contexts
        }
        inputs.append(write_data(tmp_path / "in" / f"c{i}-1-1.coverage", arcs=files))

    ours = _per_context(_lambda_coverage_combine(tmp_path / "in", tmp_path / "ours.coverage"))
    theirs = _per_context(_coverage_combine(inputs, tmp_path / "theirs.coverage"))

    assert len(ours[1]) == 500
    assert ours == theirs


def test_line_data_merged_into_branch_data_keeps_every_line_and_every_arc(
    tmp_path: Path,
) -> None:
    rng = random.Random(9)
    line_inputs = []
    branch_inputs = []
    for i in range(3):
        contexts = ["shared@1", *(f"lines@1|invocation;run=r{i * 40 + n}" for n in range(60))]
        line_inputs.append(
            write_data(
                tmp_path / "in" / f"l{i}-1-1.coverage",
                lines={c: {"app.py": {rng.randint(1, 80) for _ in range(9)}} for c in contexts},
            )
        )
        contexts = ["shared@1", *(f"branch@1|invocation;run=r{i * 40 + n}" for n in range(60))]
        branch_inputs.append(
            write_data(
                tmp_path / "in" / f"b{i}-1-1.coverage",
                arcs={c: {"app.py": _random_arcs(rng)} for c in contexts},
            )
        )

    ours_lines, ours_arcs = _per_context(
        _lambda_coverage_combine(tmp_path / "in", tmp_path / "ours.coverage")
    )
    line_part, _ = _per_context(_coverage_combine(line_inputs, tmp_path / "lines.coverage"))
    branch_lines, branch_arcs = _per_context(
        _coverage_combine(branch_inputs, tmp_path / "branches.coverage")
    )

    expected_lines: Table = {}
    expected_arcs: ArcTable = {}
    for context, files in line_part.items():
        for name, found in files.items():
            expected_lines.setdefault(context, {}).setdefault(name, set()).update(found)
            expected_arcs.setdefault(context, {}).setdefault(name, set()).update(
                (-n, n) for n in found
            )
    for context, arc_files in branch_arcs.items():
        for name, arcs in arc_files.items():
            expected_arcs.setdefault(context, {}).setdefault(name, set()).update(arcs)
            expected_lines.setdefault(context, {}).setdefault(name, set()).update(
                branch_lines[context][name]
            )
    assert len(ours_arcs) == 1 + 2 * 140
    assert ours_lines == expected_lines
    assert ours_arcs == expected_arcs
