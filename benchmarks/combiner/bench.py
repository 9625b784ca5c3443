"""The combiner against ``coverage combine``, on the same realistic data files, in one run.

Run: ``make bench-combiner`` (or ``hatch run python benchmarks/combiner/bench.py --files 2000``).

1. Measures the test stack's main function (apps/test-stack/functions/main)
   in-process under coverage.py for every scenario, to get real arcs.
2. Writes N data files as N different containers would, one snapshot per
   container (so the combiner's newest-snapshot shortcut does not apply: this
   is merge speed alone), in one of two shapes (``--shape``, both by default):
   ``single``, one context per file, each the arcs of a random subset of
   scenarios; ``contexts``, two to four contexts per file, each
   ``function@version`` with its own dynamic part (init, invocations, runs), of
   one of four functions in one of two versions (every function's files under
   the same names, as on Lambda; each file under its function's key, which is
   its identity), each context the union of its own random subset.
3. Times, each in its own process, ``coverage combine --keep`` over a folder
   of the files and ``lambda-coverage combine`` over a folder of the same
   bytes, and ``lambda-coverage combine s3://...`` against moto's server on
   127.0.0.1; reports wall time, the ratio, and peak RSS of each, and checks
   that the merged arcs and contexts are coverage.py's. The files are flushed
   to disk (``sync``) before anything is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import coverage
from coverage import CoverageData

REPO = Path(__file__).resolve().parents[2]
MAIN_ROOT = REPO / "apps" / "test-stack" / "functions" / "main"

_RUN = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    started = time.perf_counter()
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 4):
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(done.returncode)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak / 1024}))
    """
)


def scenario_arcs() -> list[dict[str, set[tuple[int, int]]]]:
    """Real arcs of the main function, one set per scenario event."""
    sys.path.insert(0, str(REPO / "apps" / "test-stack"))
    from test_stack.scenarios import scenarios_for

    sys.path.insert(0, str(MAIN_ROOT))
    events = [s.event for s in scenarios_for() if s.function == "main"]
    found = []
    old = os.getcwd()
    os.chdir(MAIN_ROOT)
    try:
        for event in events:
            cov = coverage.Coverage(
                data_file=None, branch=True, include=[f"{MAIN_ROOT}/*"], config_file=False
            )
            cov.set_option("run:relative_files", True)
            cov.start()
            for name in [m for m in sys.modules if m.startswith("calculator")]:
                del sys.modules[name]
            app = importlib.import_module("calculator.app")
            # Error scenarios raise by design.
            with contextlib.suppress(Exception):
                app.handler(event, None)
            cov.stop()
            data = cov.get_data()
            found.append({f: set(data.arcs(f) or ()) for f in data.measured_files()})
    finally:
        os.chdir(old)
    return found


SHAPES = ("single", "contexts")
FUNCTIONS = ("main", "orders", "billing", "search")


def generate(count: int, folder: Path, shape: str = "single", seed: int = 7) -> None:
    """``count`` data files as many containers would upload them, in ``shape``."""
    rng = random.Random(seed)
    arcs = scenario_arcs()
    folder.mkdir(parents=True)

    def union() -> dict[str, set[tuple[int, int]]]:
        merged: dict[str, set[tuple[int, int]]] = {}
        for files in rng.sample(arcs, k=rng.randint(1, min(6, len(arcs)))):
            for name, values in files.items():
                merged.setdefault(name, set()).update(values)
        return merged

    phases = ("init", "invocation", "invocation;run=r1", "invocation;run=r2")
    for number in range(count):
        function, version = "main", "$LATEST"
        if shape == "single":
            contexts = {"main@$LATEST": union()}
        else:
            # Every function's paths are relative to its own task root, as on
            # Lambda: the functions share file names (calculator/app.py).
            function, version = rng.choice(FUNCTIONS), rng.choice(("$LATEST", "12"))
            contexts = {
                f"{function}@{version}|{phase}": union()
                for phase in rng.sample(phases, k=rng.randint(2, 4))
            }
        day = f"2026/11/{1 + number % 28:02d}"
        name = f"{number:08x}-{1000 + number}-000001.coverage"
        path = folder / f"coverage/{day}/{function}/{version.lstrip('$')}/{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = CoverageData(basename=str(path))
        for context, files in contexts.items():
            data.set_context(context)
            data.add_arcs({name: sorted(values) for name, values in files.items()})
        data.write()


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _RUN, *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    measured: dict[str, float] = json.loads(result.stdout)
    return measured


def bench(count: int, work: Path, shape: str, *, s3: bool = True) -> dict[str, dict[str, float]]:
    work = work / shape
    source = work / f"files-{count}"
    generate(count, source, shape)
    files = sorted(source.rglob("*.coverage"))
    # coverage combine takes `<data file>.*` from a folder: same bytes, its naming.
    theirs = work / f"theirs-{count}"
    theirs.mkdir(parents=True)
    for number, path in enumerate(files):
        shutil.copyfile(path, theirs / f".coverage.{number}")
    # Gigabytes just written would otherwise be written back to disk while the
    # tools run, taking CPU and I/O from whichever runs then.
    os.sync()
    # Both tools run in a folder of their own, where no function's source is.
    results = {
        "coverage combine": timed(
            [
                sys.executable,
                "-m",
                "coverage",
                "combine",
                "--keep",
                "-q",
                f"--data-file={theirs / '.coverage'}",
                str(theirs),
            ],
            work,
        ),
        "lambda-coverage (folder)": timed(
            [
                sys.executable,
                "-m",
                "coverage_combiner.cli",
                "combine",
                str(source),
                "-o",
                str(work / f"ours-{count}"),
                "--format",
                "data",
                "-q",
                "--function-version",
                "all",
            ],
            work,
        ),
    }
    if s3:
        results["lambda-coverage (S3, moto)"] = _bench_s3(files, source, work, count)
    # A faster merge is worth nothing if it merges differently: same arcs, same contexts.
    expected = _merged_arcs(theirs / ".coverage", work)
    if not expected:
        raise SystemExit("coverage combine merged nothing: the generated files are empty")
    for name in (f"ours-{count}", f"ours-s3-{count}")[: 2 if s3 else 1]:
        if _merged_arcs(work / name / ".coverage", work) != expected:
            raise SystemExit(f"{name}: the merged arcs differ from coverage combine's")
    return results


def _merged_arcs(path: Path, ran_in: Path) -> dict[tuple[str, str], set[tuple[int, int]]]:
    """Arcs per (context, measured path).

    Paths are taken relative to the folder the tools ran in; the combiner keeps
    each function's files apart under ``FUNCTION/`` there (no source is found),
    which is taken off to compare with the paths as measured.
    """
    data = CoverageData(basename=str(path))
    data.read()
    found: dict[tuple[str, str], set[tuple[int, int]]] = {}
    several = len({c.partition("@")[0] for c in data.measured_contexts()}) > 1
    for context in data.measured_contexts():
        # Exactly this context: a pattern would read '|' (static|dynamic) as an alternative.
        data.set_query_context(context)
        apart = f"{context.partition('@')[0]}/" if several else ""
        for name in data.measured_files():
            relative = os.path.relpath(name, ran_in) if os.path.isabs(name) else name
            if os.path.isabs(name) and not relative.startswith(apart):
                continue  # another function's file
            relative = relative.removeprefix(apart)
            arcs = set(data.arcs(name) or ())
            if arcs:
                found[(context, relative)] = arcs
    return found


def _bench_s3(files: list[Path], source: Path, work: Path, count: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO / "apps" / "test-stack"))
    from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

    with moto_s3_server() as url:
        client = s3_client(url)
        bucket = f"bench-{count}-{work.name}"
        client.create_bucket(Bucket=bucket)
        for path in files:
            client.put_object(
                Bucket=bucket, Key=path.relative_to(source).as_posix(), Body=path.read_bytes()
            )
        env = {**os.environ, **s3_environment(url)}
        return timed(
            [
                sys.executable,
                "-m",
                "coverage_combiner.cli",
                "combine",
                f"s3://{bucket}/coverage/",
                "-o",
                str(work / f"ours-s3-{count}"),
                "--format",
                "data",
                "-q",
                "--jobs",
                "16",
                "--function-version",
                "all",
            ],
            work,
            env=env,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[2000])
    parser.add_argument("--shape", choices=SHAPES, action="append", help="default: both")
    parser.add_argument("--no-s3", action="store_true", help="leave out the S3 (moto) row")
    args = parser.parse_args(argv)
    print(
        f"Python {sys.version.split()[0]}, coverage {coverage.__version__}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-combiner-") as tmp:
        for shape in args.shape or SHAPES:
            for count in args.files:
                results = bench(count, Path(tmp), shape, s3=not args.no_s3)
                base = results["coverage combine"]["seconds"]
                print(f"\n{count} data files, shape {shape}")
                print("| tool | seconds | vs coverage combine | peak RSS MiB |")
                print("| --- | ---: | ---: | ---: |")
                for name, figures in results.items():
                    ratio = base / figures["seconds"]
                    relative = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
                    if name == "coverage combine":
                        relative = "baseline"
                    print(
                        f"| {name} | {figures['seconds']:.2f} | {relative} "
                        f"| {figures['peak_rss_mib']:.0f} |"
                    )
                print("merged arcs and contexts identical to coverage combine's: yes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
