"""Memory per input stays a small multiple of its size, however dense its line data."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from coverage_combiner.reader import MAX_LINE
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
    # 20 files with every line up to the highest accepted: 2.6 MB that once
    # expanded to 21 million Python ints (5 GB, 58 s) on the way to the output.
    dense = b"\xff" * (MAX_LINE // 8)
    bomb = write_data(
        tmp_path / "in" / "dense.coverage",
        lines={"bomb@1": {f"file{i}.py": {1} for i in range(20)}},
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
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib // 1024} MiB for a 2.6 MB input"
    assert small.stat().st_size < bomb.stat().st_size < 3_000_000
    # The output holds exactly the bits of the input, file by file.
    with sqlite3.connect(out / ".coverage") as db:
        rows = db.execute(
            "select context, path, numbits from line_bits join file on file.id = file_id "
            "join context on context.id = context_id"
        ).fetchall()
    # Paths are mapped to where the source would be (a folder per function).
    assert sorted((context, Path(path).name) for context, path, _ in rows) == sorted(
        [("bomb@1", f"file{i}.py") for i in range(20)] + [("other@1", "a.py")]
    )
    assert {bits for context, _, bits in rows if context == "bomb@1"} == {dense}
    # And coverage.py reads it as the inputs said (the small file through its API).
    (small_path,) = (path for context, path, _ in rows if context == "other@1")
    assert read_data_lines(out / ".coverage", small_path) == {3, 4}


def read_data_lines(path: Path, measured: str) -> set[int]:
    """One file's lines through coverage.py's public API."""
    from coverage import CoverageData

    data = CoverageData(basename=str(path))
    data.read()
    return set(data.lines(measured) or ())
