"""Memory per input stays a small multiple of its size, however dense its line data."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coverage_combiner.combine import CombineOptions, combine
from coverage_wrapper.limits import MAX_CLAIMED_LINES, MAX_LINE
from tests.combiner.conftest import write_data

#: Run in a child so that ``RUSAGE_CHILDREN`` holds the combine's peak alone.
_MEASURE = textwrap.dedent(
    """
    import resource, subprocess, sys
    done = subprocess.run(sys.argv[1:])
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def test_a_dense_line_data_file_is_merged_in_bounded_memory(tmp_path: Path) -> None:
    # Eight files with every line up to the highest accepted: as many lines as
    # one input may claim (1 MB). 20 such files once expanded to 21 million
    # Python ints (5 GB, 58 s) on the way to the output.
    rows = MAX_CLAIMED_LINES // MAX_LINE
    dense = b"\xff" * (MAX_LINE // 8)
    bomb = write_data(
        tmp_path / "in" / "dense.coverage",
        lines={"bomb@1": {f"file{i}.py": {1} for i in range(rows)}},
    )
    with sqlite3.connect(bomb) as db:
        db.execute("update line_bits set numbits = ?", (dense,))
    small = write_data(tmp_path / "in" / "small.coverage", lines={"other@1": {"a.py": {3, 4}}})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "coverage_combiner.cli", "combine", str(tmp_path / "in")]
    command += ["-o", str(out), "--format", "data,json", "-q", "--processes", "1"]

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    exit_code, peak_kib = map(int, done.stdout.split())
    assert exit_code == 0, done.stderr
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib // 1024} MiB for a 1 MB input"
    assert small.stat().st_size < bomb.stat().st_size < 1_200_000
    # The output holds exactly the bits of the input, file by file.
    with sqlite3.connect(out / ".coverage") as db:
        rows_out = db.execute(
            "select context, path, numbits from line_bits join file on file.id = file_id "
            "join context on context.id = context_id"
        ).fetchall()
    # Paths are mapped to where the source would be (a folder per function).
    assert sorted((context, Path(path).name) for context, path, _ in rows_out) == sorted(
        [("bomb@1", f"file{i}.py") for i in range(rows)] + [("other@1", "a.py")]
    )
    assert {bits for context, _, bits in rows_out if context == "bomb@1"} == {dense}
    # And coverage.py reads it as the inputs said (the small file through its API).
    (small_path,) = (path for context, path, _ in rows_out if context == "other@1")
    assert read_data_lines(out / ".coverage", small_path) == {3, 4}


def _claiming(path: Path, lines: int) -> Path:
    """Line data of one context claiming exactly ``lines`` executed lines, densely packed."""
    full, rest = divmod(lines, MAX_LINE)
    files = {f"file{i}.py": {1} for i in range(full + (1 if rest else 0))}
    write_data(path, lines={"bomb@1": files})
    with sqlite3.connect(path) as db:
        db.execute("update line_bits set numbits = ?", (b"\xff" * (MAX_LINE // 8),))
        if rest:
            last = ((1 << rest) - 1).to_bytes((rest + 7) // 8, "little")
            db.execute(
                "update line_bits set numbits = ? where file_id = "
                "(select id from file where path = ?)",
                (last, f"file{full}.py"),
            )
    return path


def test_an_input_claiming_more_lines_than_the_budget_is_rejected_by_name(
    tmp_path: Path,
) -> None:
    # One line over: line data merged into branch data would make one row of
    # the data file written per claimed line (the 2.7 MB bomb: 21 million
    # rows, 860 MB, 13-33 s). The file is named with the limit; the rest merges.
    _claiming(tmp_path / "in" / "over.coverage", MAX_CLAIMED_LINES + 1)
    _claiming(tmp_path / "in" / "at.coverage", MAX_CLAIMED_LINES)
    write_data(tmp_path / "in" / "branch.coverage", arcs={"other@1": {"b.py": {(-1, 1)}}})

    result = combine([str(tmp_path / "in")], CombineOptions(version="all", processes=1))

    assert [(Path(name).name, reason) for name, reason in result.rejected] == [
        (
            "over.coverage",
            f"claims more than {MAX_CLAIMED_LINES:,} executed lines in all (summed over its "
            "contexts and files), far more than real data holds: corrupt or not written "
            "by coverage.py",
        )
    ]
    executed = result.merged.executed()
    assert sum(bits.bit_count() for bits in executed.values()) == MAX_CLAIMED_LINES + 1
    assert result.merged.has_arcs


def test_the_claimed_lines_budget_is_far_above_real_data() -> None:
    # The largest real data file measured (a function measuring boto3,
    # botocore, moto, pytest and coverage.py: 2,018 files, 29 contexts) claims
    # 220,932 lines in 0.95 MB; the budget is that 38 times over, and a file of
    # that density reaches it only at 36 MB.
    assert MAX_CLAIMED_LINES >= 32 * 220_932
    # One input at the budget merged into branch data stays within Lambda's
    # default /tmp (512 MB) at about 40 bytes per row written.
    assert MAX_CLAIMED_LINES * 40 < 512 * 1_000_000


def read_data_lines(path: Path, measured: str) -> set[int]:
    """One file's lines through coverage.py's public API."""
    from coverage import CoverageData

    data = CoverageData(basename=str(path))
    data.read()
    return set(data.lines(measured) or ())


#: The bound the combiner's README states: peak RSS <= base + K x input size,
#: for one input of any shape a keyed input can have (contexts of one function,
#: line and branch data, mixed).
K = 10
#: The interpreter, coverage.py, boto3 and the reports, with room for the machine's variation.
BASE_MIB = 60


def _many_run_contexts(path: Path, count: int, *, arcs: bool) -> Path:
    """``count`` run-id contexts of one function, a few lines or arcs of ``app.py`` each."""
    if arcs:
        write_data(path, arcs={"fn@1|invocation;run=r0": {"app.py": {(-1, 1), (1, 2)}}})
    else:
        write_data(path, lines={"fn@1|invocation;run=r0": {"app.py": {1, 2}}})
    with sqlite3.connect(path) as db:
        db.executemany(
            "insert into context (context) values (?)",
            ((f"fn@1|invocation;run=r{i:06d}",) for i in range(1, count)),
        )
        if arcs:
            db.execute(
                "insert into arc (file_id, context_id, fromno, tono) "
                "select 1, id, 1, 2 + id % 5 from context where id > 1"
            )
        else:
            db.execute(
                "insert into line_bits (file_id, context_id, numbits) "
                "select 1, id, cast(char(id % 250 + 2) as blob) from context where id > 1"
            )
    return path


def _combine_peak(inputs: Path, out: Path, cwd: Path) -> int:
    """Combine ``inputs`` with the scheduled Lambda's outputs in a child; its peak RSS in KiB."""
    command = [sys.executable, "-m", "coverage_combiner.cli", "combine", str(inputs)]
    command += ["-o", str(out), "--format", "data,json,markdown", "-q", "--processes", "1"]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=cwd,
    )
    exit_code, peak_kib = map(int, done.stdout.split())
    assert exit_code == 0, done.stderr
    return peak_kib


def _rows(path: Path, table: str) -> set[tuple[object, ...]]:
    """The (context, file name, data...) rows of a data file's ``line_bits`` or ``arc`` table."""
    columns = "numbits" if table == "line_bits" else "fromno, tono"
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            f"select context, path, {columns} from {table} "  # noqa: S608 (our names)
            "join file on file.id = file_id join context on context.id = context_id"
        ).fetchall()
    return {(context, Path(name).name, *rest) for context, name, *rest in rows}


@pytest.mark.parametrize("arcs", [False, True], ids=["lines", "arcs"])
def test_an_input_of_many_contexts_is_merged_within_the_stated_bound(
    tmp_path: Path, arcs: bool
) -> None:
    # 60,000 run-id contexts of one function, with the source at hand so that
    # coverage.py's JSON report runs: it listed every context of every line
    # (about 1 GB for 250,000 contexts in 26 MB, K = 40).
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("".join(f"x{i} = {i}\n" for i in range(12)))
    bomb = _many_run_contexts(tmp_path / "in" / "contexts.coverage", 60_000, arcs=arcs)
    size = bomb.stat().st_size

    peak_kib = _combine_peak(tmp_path / "in", tmp_path / "out", cwd=source)

    bound_kib = BASE_MIB * 1024 + K * size // 1024
    assert peak_kib < bound_kib, f"peak {peak_kib // 1024} MiB for {size / 1e6:.1f} MB"
    # Every row came through as it was, context by context.
    table = "arc" if arcs else "line_bits"
    assert _rows(tmp_path / "out" / ".coverage", table) == _rows(bomb, table)
    summary = json.loads((tmp_path / "out" / "coverage-summary.json").read_text())
    assert summary["functions"]["fn"]["statements"] == 12


def test_the_memory_benchmark_runs_in_smoke_mode(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "benchmarks" / "combiner" / "memory.py"

    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    shapes = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert shapes == [
        "lines",
        "arcs",
        "mixed",
        "mixed-over",
        "contexts",
        "contexts-arcs",
        "functions",
    ]
    assert all(" exit 0 " in line for line in done.stdout.splitlines()[1:])
