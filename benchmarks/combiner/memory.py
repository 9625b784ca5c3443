"""Peak memory and time of one combine per byte of input, on data files built to blow them up.

Run: ``hatch run python benchmarks/combiner/memory.py`` (``--megabytes 2.7``;
``--smoke`` for a quick run on small files, as the test suite does).

Each shape is a data file of about ``--megabytes`` made with coverage.py's
public API and then made dense with SQL, the way a hostile or broken writer
could:

- ``lines``: every line bit set up to the highest line the combiner accepts,
  in as many (context, file) rows as fit: the densest line data possible;
- ``arcs``: as many distinct arcs as fit, every one near the highest line;
- ``mixed``: the ``lines`` file next to a one-arc branch file, so the line
  data enters branch data as ``(-n, n)`` arcs;
- ``contexts``: one function, as many run-id contexts as fit (``fn@1|invocation;run=r...``),
  a few lines of one file each;
- ``contexts-arcs``: the same with a few arcs each (branch data);
- ``functions``: as many functions as fit (``f0000001@1``, ...), a few lines
  each: only an input without a key layout can hold them (a keyed input counts
  the function its key names).

Each combine runs in its own process (``lambda-coverage combine``, with the
outputs the scheduled combiner Lambda writes: data file, JSON and Markdown);
its peak RSS comes from ``resource.getrusage(RUSAGE_CHILDREN)``. Printed: the
input size, the peak, the peak of a combine of one tiny file (the baseline: the
interpreter, coverage.py and boto3), and K = (peak - baseline) / input size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from coverage import CoverageData

from coverage_combiner.reader import MAX_LINE

_RUN = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    started = time.perf_counter()
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_kib": peak, "exit": done.returncode,
                      "stderr": done.stderr[-2000:]}))
    """
)


def dense_lines(path: Path, megabytes: float) -> Path:
    """A line data file of about ``megabytes``, every line bit set up to :data:`MAX_LINE`."""
    row = b"\xff" * (MAX_LINE // 8)
    rows = max(1, int(megabytes * 1_000_000) // len(row))
    data = CoverageData(basename=str(path))
    data.set_context("bomb@1")
    data.add_lines({f"file{i}.py": [1] for i in range(rows)})
    data.write()
    with sqlite3.connect(path) as db:
        db.execute("update line_bits set numbits = ?", (row,))
    return path


def dense_arcs(path: Path, megabytes: float) -> Path:
    """A branch data file of about ``megabytes`` of distinct arcs near :data:`MAX_LINE`."""
    data = CoverageData(basename=str(path))
    data.set_context("bomb@1")
    data.add_arcs({"file.py": [(-1, 1)]})
    data.write()
    # An arc row with its index entry takes about 24 bytes on disk.
    count = int(megabytes * 1_000_000) // 24
    with sqlite3.connect(path) as db:
        db.executemany(
            "insert into arc (file_id, context_id, fromno, tono) values (1, 1, ?, ?)",
            ((MAX_LINE - i % 1000, MAX_LINE - i // 1000) for i in range(count)),
        )
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("vacuum")
    return path


#: A row of ``context`` and one of ``line_bits`` or two of ``arc`` take about
#: this many bytes on disk, index entries included.
_CONTEXT_ROW_BYTES = {"lines": 100, "arcs": 135}


def many_contexts(path: Path, megabytes: float, *, kind: str, context: str) -> Path:
    """About ``megabytes`` of contexts (``context`` formatted with ``i``), a few lines each."""
    count = max(2, int(megabytes * 1_000_000) // _CONTEXT_ROW_BYTES[kind])
    data = CoverageData(basename=str(path))
    data.set_context(context.format(i=0))
    if kind == "arcs":
        data.add_arcs({"app.py": [(-1, 1), (1, 2)]})
    else:
        data.add_lines({"app.py": [1, 2]})
    data.write()
    with sqlite3.connect(path) as db:
        db.executemany(
            "insert into context (context) values (?)",
            ((context.format(i=i),) for i in range(1, count)),
        )
        if kind == "arcs":
            db.execute(
                "insert into arc (file_id, context_id, fromno, tono) "
                "select 1, id, -1, 1 from context where id > 1"
            )
            db.execute(
                "insert into arc (file_id, context_id, fromno, tono) "
                "select 1, id, 1, 2 + id % 7 from context where id > 1"
            )
        else:
            db.execute(
                "insert into line_bits (file_id, context_id, numbits) "
                "select 1, id, randomblob(3) from context where id > 1"
            )
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("vacuum")
    return path


def build(shape: str, folder: Path, megabytes: float) -> list[Path]:
    """The data files of ``shape`` in ``folder``."""
    folder.mkdir()
    if shape == "lines":
        return [dense_lines(folder / "lines.coverage", megabytes)]
    if shape == "arcs":
        return [dense_arcs(folder / "arcs.coverage", megabytes)]
    if shape == "mixed":
        return [dense_lines(folder / "lines.coverage", megabytes), tiny_arcs(folder / "a.coverage")]
    kind = "arcs" if shape == "contexts-arcs" else "lines"
    context = "f{i:07d}@1" if shape == "functions" else "fn@1|invocation;run=r{i:07d}"
    return [many_contexts(folder / f"{shape}.coverage", megabytes, kind=kind, context=context)]


SHAPES = ("lines", "arcs", "mixed", "contexts", "contexts-arcs", "functions")
#: What ``--smoke`` runs on: small files, every shape.
SMOKE_MEGABYTES = 0.3


def tiny(path: Path) -> Path:
    """One line of one file: what the interpreter and the libraries cost alone."""
    data = CoverageData(basename=str(path))
    data.set_context("small@1")
    data.add_lines({"small.py": [1]})
    data.write()
    return path


def measure(inputs: Path, work: Path) -> dict[str, object]:
    """Combine the folder ``inputs`` in a child process; its peak RSS and time."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "coverage_combiner.cli", "combine", str(inputs)]
    command += ["-o", str(out), "--format", "data,json,markdown", "-q", "--processes", "1"]
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *command], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    """Build each shape, combine it, print the figures; 1 if a combine failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=2.7, help="size of each input")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--smoke", action="store_true", help="small files: a quick check")
    args = parser.parse_args(argv)
    megabytes = SMOKE_MEGABYTES if args.smoke else args.megabytes
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        base_in = work / "base"
        base_in.mkdir()
        tiny(base_in / "tiny.coverage")
        baseline = measure(base_in, work)
        base_kib = int(str(baseline["peak_kib"]))
        print(f"baseline (one tiny file): peak {base_kib / 1024:.0f} MiB")
        for shape in args.shapes.split(","):
            built = build(shape, work / shape, megabytes)
            size = sum(path.stat().st_size for path in built)
            figures = measure(work / shape, work)
            peak = int(str(figures["peak_kib"]))
            k = (peak - base_kib) * 1024 / size
            print(
                f"{shape:13} input {size / 1e6:5.2f} MB  exit {figures['exit']}  "
                f"peak {peak / 1024:6.0f} MiB  {float(str(figures['seconds'])):5.1f} s  "
                f"K = {k:.1f}"
            )
            if figures["exit"] not in (0, 4):
                failed += 1
                print(figures["stderr"])
    return 1 if failed else 0


def tiny_arcs(path: Path) -> Path:
    """One arc of one file: branch data, so the line data merges into arcs."""
    data = CoverageData(basename=str(path))
    data.set_context("small@1")
    data.add_arcs({"small.py": [(-1, 1)]})
    data.write()
    return path


if __name__ == "__main__":
    sys.exit(main())
