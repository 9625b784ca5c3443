"""Init cost of the shipped layer, with its checked-hash bytecode and without, against the floor.

Run: ``hatch run python benchmarks/wrapper/cold_start.py --rounds 15``.

The layer is built as it ships (``build_wrapper_layer``: the wrapper,
coverage.py and checked-hash ``.pyc`` files compiled by this interpreter) and
copied once with every ``__pycache__`` removed. Each sample is a new
interpreter with ``PYTHONDONTWRITEBYTECODE=1`` (``/opt`` is read-only on
Lambda: nothing compiled at init is kept) and the layer's ``python`` folders on
``PYTHONPATH`` as Lambda puts them; ``awslambdaric``'s bootstrap is imported
first, as the runtime has it loaded before the handler. It times, in the
process:

- ``floor``: ``import coverage`` and ``Coverage().start()`` from the layer's
  cached bytecode (what any coverage tool must pay);
- ``bare``: importing the function's module (trivial);
- ``zero-code``: importing ``coverage_wrapper.handler`` (configuration,
  session, coverage.py started, the function's module imported under it),
  from the layer with bytecode and from the copy without.

With ``--compare REF`` (repeatable) the same layer with the wrapper of git
revision ``REF`` instead (its own checked-hash bytecode; coverage.py as
shipped now) is timed too: a change's effect on init, measured in one run.

Variants are interleaved over the rounds; medians are reported, of the wall
clock and of the process's CPU time (on a shared machine the CPU time moves
less with the load: the wall clock also counts waiting for a core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from test_stack.layer import Layer, build_wrapper_layer, with_wrapper_of

APP = textwrap.dedent(
    """\
    def handler(event, context):
        return {"statusCode": 200}
    """
)

TIMED = {
    "floor": "import coverage\ncoverage.Coverage(data_file=None).start()",
    "bare": "import app",
    "zero-code": "import coverage_wrapper.handler",
}

PROBE = textwrap.dedent(
    """\
    import sys, time
    import awslambdaric.bootstrap
    code = sys.argv[1]
    t, cpu = time.perf_counter(), time.process_time()
    exec(code)
    print((time.perf_counter() - t) * 1000, (time.process_time() - cpu) * 1000)
    """
)


def sample(layer: Layer, code_dir: Path, spool: Path, timed: str) -> tuple[float, float]:
    """Milliseconds ``timed`` takes in a new interpreter on ``layer``: wall clock, CPU."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    paths = [str(code_dir), *(str(p) for p in layer.python_paths(version))]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COVERAGE_") and key != "PYTHONPATH"
    }
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONDONTWRITEBYTECODE="1",
        LAMBDA_TASK_ROOT=str(code_dir),
        COVERAGE_ORIGINAL_HANDLER="app.handler",
        COVERAGE_SPOOL_DIR=str(spool),
        COVERAGE_LOG_LEVEL="ERROR",
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE, timed],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=code_dir,
    ).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def without_bytecode(layer: Layer, root: Path) -> Layer:
    """A copy of ``layer`` with every ``__pycache__`` folder removed."""
    shutil.copytree(layer.root, root, symlinks=True)
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    return Layer(root)


def main(argv: list[str] | None = None) -> int:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="REF",
        help="also time zero-code init with the wrapper of this git revision (repeatable)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cold-start-bench-") as tmp:
        work = Path(tmp)
        code = work / "code"
        code.mkdir()
        (code / "app.py").write_text(APP)
        shipped = build_wrapper_layer(work / "opt")
        stripped = without_bytecode(shipped, work / "opt-no-pyc")
        variants = {
            "floor: import coverage + Coverage().start() (bytecode)": (shipped, TIMED["floor"]),
            "bare: import the function's module": (shipped, TIMED["bare"]),
            "zero-code init, layer with its .pyc": (shipped, TIMED["zero-code"]),
            "zero-code init, layer without .pyc": (stripped, TIMED["zero-code"]),
        }
        for number, ref in enumerate(args.compare):
            other = with_wrapper_of(shipped, ref, work / f"opt-{number}")
            name = f"zero-code init, wrapper of {ref}, with its .pyc"
            variants[name] = (other, TIMED["zero-code"])
        found: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for number in range(args.rounds):
            for name, (layer, timed) in variants.items():
                spool = work / f"spool-{number}-{len(found[name])}"
                found[name].append(sample(layer, code, spool, timed))
    medians = {
        name: (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
        for name, times in found.items()
    }
    floor, floor_cpu = medians[next(iter(medians))]
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"Python {version}, {args.rounds} interleaved rounds, medians\n")
    print("| variant | init ms | x floor | CPU ms | CPU x floor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {wall:.1f} | {wall / floor:.2f} | {cpu:.1f} | {cpu / floor_cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
