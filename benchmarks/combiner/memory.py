"""Peak memory and time of one combine per byte of input, on data files built to blow them up.

Run: ``hatch run python benchmarks/combiner/memory.py`` (``--megabytes 2.7``;
``--smoke`` for a quick run on small files, as the test suite does;
``--before CHECKOUT --rounds 3`` to run another checkout's combiner on the
same files, interleaved, best of each).

Each shape is a data file of about ``--megabytes`` made with coverage.py's
public API and then made dense with SQL, the way a hostile or broken writer
could:

- ``lines``: every line bit set up to the highest line the combiner accepts,
  in as many (context, file) rows as fit and as one input may claim
  (:data:`MAX_CLAIMED_LINES`, about 1 MB of bits): the densest valid line data;
- ``arcs``: as many distinct arcs as fit, every one near the highest line;
- ``mixed``: the ``lines`` file next to a one-arc branch file, so the line
  data enters branch data as ``(-n, n)`` arcs;
- ``mixed-over``: ``mixed`` with as many rows as fit in ``--megabytes``,
  over the budget (rejected: the file is named, the rest merges);
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
interpreter, coverage.py and boto3), K = (peak - baseline) / input size, the
time and the time per MB of input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from coverage import CoverageData

from coverage_wrapper.limits import MAX_CLAIMED_LINES, MAX_LINE

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


def dense_lines(path: Path, megabytes: float, *, within_budget: bool = True) -> Path:
    """A line data file of about ``megabytes``, every line bit set up to :data:`MAX_LINE`.

    ``within_budget``: no more rows than one input may claim lines for.
    """
    row = b"\xff" * (MAX_LINE // 8)
    rows = max(1, int(megabytes * 1_000_000) // len(row))
    if within_budget:
        rows = min(rows, MAX_CLAIMED_LINES // MAX_LINE)
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
    if shape in ("mixed", "mixed-over"):
        lines = dense_lines(folder / "lines.coverage", megabytes, within_budget=shape == "mixed")
        return [lines, tiny_arcs(folder / "a.coverage")]
    kind = "arcs" if shape == "contexts-arcs" else "lines"
    context = "f{i:07d}@1" if shape == "functions" else "fn@1|invocation;run=r{i:07d}"
    return [many_contexts(folder / f"{shape}.coverage", megabytes, kind=kind, context=context)]


SHAPES = ("lines", "arcs", "mixed", "mixed-over", "contexts", "contexts-arcs", "functions")
#: What ``--smoke`` runs on: small files, every shape.
SMOKE_MEGABYTES = 0.3


def tiny(path: Path) -> Path:
    """One line of one file: what the interpreter and the libraries cost alone."""
    data = CoverageData(basename=str(path))
    data.set_context("small@1")
    data.add_lines({"small.py": [1]})
    data.write()
    return path


def measure(inputs: Path, work: Path, checkout: Path | None = None) -> dict[str, object]:
    """Combine the folder ``inputs`` in a child process; its peak RSS and time.

    ``checkout``: run that checkout's combiner and wrapper instead of this one's.
    """
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "coverage_combiner.cli", "combine", str(inputs)]
    command += ["-o", str(out), "--format", "data,json,markdown", "-q", "--processes", "1"]
    environment = dict(os.environ)
    if checkout is not None:
        packages = ("coverage-combiner", "coverage-wrapper")
        sources = [checkout / "packages" / name / "src" for name in packages]
        environment["PYTHONPATH"] = os.pathsep.join(map(str, sources))
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *command],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def best(
    inputs: Path, work: Path, rounds: int, checkouts: list[Path | None]
) -> list[dict[str, object]]:
    """The fastest of ``rounds`` runs of each checkout, the checkouts interleaved round by round."""
    runs: list[list[dict[str, object]]] = [[] for _ in checkouts]
    for _ in range(rounds):
        for index, checkout in enumerate(checkouts):
            runs[index].append(measure(inputs, work, checkout))
    return [min(found, key=lambda run: float(str(run["seconds"]))) for found in runs]


def line(label: str, size: int, figures: dict[str, object], base_kib: int) -> str:
    """One printed row: input size, exit, peak, time, time per MB, K."""
    peak = int(str(figures["peak_kib"]))
    seconds = float(str(figures["seconds"]))
    k = (peak - base_kib) * 1024 / size
    return (
        f"{label:13} input {size / 1e6:5.2f} MB  exit {figures['exit']}  "
        f"peak {peak / 1024:6.0f} MiB  {seconds:5.1f} s  {seconds / (size / 1e6):5.2f} s/MB  "
        f"K = {k:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    """Build each shape, combine it, print the figures; 1 if a combine failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=2.7, help="size of each input")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--smoke", action="store_true", help="small files: a quick check")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, the best kept")
    parser.add_argument(
        "--before", type=Path, help="a checkout whose combiner runs on the same files too"
    )
    args = parser.parse_args(argv)
    megabytes = SMOKE_MEGABYTES if args.smoke else args.megabytes
    checkouts: list[Path | None] = [None] if args.before is None else [None, args.before]
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
            found = best(work / shape, work, max(1, args.rounds), checkouts)
            for label, figures in zip(("", "  before"), found, strict=False):
                print(line(shape + label, size, figures, base_kib))
            if found[0]["exit"] not in (0, 4):
                failed += 1
                print(found[0]["stderr"])
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
