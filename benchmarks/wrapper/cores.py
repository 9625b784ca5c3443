"""What each coverage.py core costs a warm handler, alone and inside the wrapper, per Python.

Run (one ``--python`` per interpreter; each needs coverage.py, and the wrapper's
source on its path)::

    PYTHONPATH=packages/coverage-wrapper/src python benchmarks/wrapper/cores.py \\
        --python /path/to/python3.10 --python /path/to/python3.13 --rounds 5

For each interpreter, on a trivial handler and on a CPU-bound pure-Python one,
it times steady-state warm calls (the process's CPU time): bare; coverage.py
alone (started around each batch of calls) with each core (``ctrace``;
``sysmon`` on 3.12+), branch on and off; and the wrapper
(``@coverage_handler``, flush policy ``adaptive`` past its first invocations,
the steady state it reaches with the layer's extension) with the same core and
branch setting. Each variant runs in a process of its own (a core is chosen
when coverage.py starts), and the variants are interleaved over ``--rounds``
rounds because the machine is shared and noisy: the figures are medians over
the rounds of each process's median, as ratios to the bare handler of the same
interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HANDLERS = textwrap.dedent(
    """\
    def trivial(event, context):
        if event.get("items"):
            return {"statusCode": 200, "count": len(event["items"])}
        return {"statusCode": 400}


    def cpu_bound(event, context):
        total = 0
        for i in range(event["n"]):
            if i % 3 == 0:
                total += i
            elif i % 5 == 0:
                total -= 1
            else:
                total ^= i
        return total
    """
)

#: Calls per timed sample: a trivial call is too short to time alone.
TRIVIAL_BATCH = 500
CPU_EVENT = {"n": 200_000}
SAMPLES = 9
WARMUP = 5


class Context:
    """Enough of a Lambda context for the wrapper."""

    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _child(variant: str, task_root: str) -> dict[str, Any]:
    """Time one variant in this process: seconds per call, median of samples, per handler."""
    sys.path.insert(0, task_root)
    import handlers  # type: ignore[import-not-found]

    kind, _, rest = variant.partition(":")
    core, _, branch_text = rest.partition(":")
    branch = branch_text == "branch"
    context = Context()
    trivial: Callable[[Any, Any], Any] = handlers.trivial
    cpu: Callable[[Any, Any], Any] = handlers.cpu_bound
    around: Callable[[Callable[[], None]], None] = lambda run: run()  # noqa: E731
    used_core = "-"
    if kind == "coverage":
        import coverage

        os.environ["COVERAGE_CORE"] = core
        cov = coverage.Coverage(data_file=None, branch=branch, include=[f"{task_root}/*"])

        def around(run: Callable[[], None]) -> None:
            cov.start()
            try:
                run()
            finally:
                cov.stop()

        around(lambda: trivial({}, context))
        used_core = str(dict(cov.sys_info()).get("core"))
    elif kind == "wrapper":
        os.environ.update(
            {
                "COVERAGE_CORE": core,
                "COVERAGE_BRANCH_COVERAGE": "true" if branch else "false",
                "LAMBDA_TASK_ROOT": task_root,
                "COVERAGE_FLUSH_POLICY": "adaptive",
                "COVERAGE_LOG_LEVEL": "ERROR",
            }
        )
        from coverage_wrapper import coverage_handler
        from coverage_wrapper.session import current_session

        trivial = coverage_handler(handlers.trivial)
        cpu = coverage_handler(handlers.cpu_bound)
        trivial({}, context)
        session = current_session()
        assert session is not None
        assert session.measurement is not None
        used_core = str(session.measurement.core())

    def per_call(call: Callable[[], None], batch: int) -> float:
        for _ in range(WARMUP):
            around(call)
        times = []
        for _ in range(SAMPLES):
            start = time.process_time()
            for _ in range(batch):
                around(call)
            times.append((time.process_time() - start) / batch)
        return statistics.median(times)

    event = {"items": [1, 2]}
    return {
        "core": used_core,
        "trivial": per_call(lambda: trivial(event, context), TRIVIAL_BATCH),
        "cpu": per_call(lambda: cpu(CPU_EVENT, context), 1),
    }


def variants(python: str) -> list[str]:
    """The variants an interpreter can run (``sysmon`` needs 3.12)."""
    minor = int(
        subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[1])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    cores = ["ctrace", "sysmon"] if minor >= 12 else ["ctrace"]
    found = ["bare"]
    for kind in ("coverage", "wrapper"):
        for core in cores:
            for branch in ("nobranch", "branch"):
                found.append(f"{kind}:{core}:{branch}")
    return found


def run_python(python: str, rounds: int, task_root: str) -> dict[str, Any]:
    """Every variant of one interpreter, interleaved over ``rounds``."""
    names = variants(python)
    version = subprocess.run(
        [
            python,
            "-c",
            "import platform, coverage; print(platform.python_version(), coverage.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            with tempfile.TemporaryDirectory() as spool:
                env = dict(os.environ, COVERAGE_SPOOL_DIR=spool)
                out = subprocess.run(
                    [python, __file__, "--child", name, "--task-root", task_root],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout
            results[name].append(json.loads(out))
    summary: dict[str, Any] = {"python": version[0], "coverage": version[1], "variants": {}}
    for name, samples in results.items():
        summary["variants"][name] = {
            "core": samples[-1]["core"],
            "trivial": statistics.median(s["trivial"] for s in samples),
            "cpu": statistics.median(s["cpu"] for s in samples),
        }
    return summary


def table(summaries: list[dict[str, Any]]) -> str:
    """Markdown: per interpreter and variant, time per call and ratio to bare."""
    lines = [
        "| Python | variant | core used | trivial µs/call | x bare | CPU-bound ms/call | x bare |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for summary in summaries:
        bare = summary["variants"]["bare"]
        for name, found in summary["variants"].items():
            lines.append(
                f"| {summary['python']} | {name.replace(':', ' ')} | {found['core']} "
                f"| {found['trivial'] * 1e6:.1f} | {found['trivial'] / bare['trivial']:.2f} "
                f"| {found['cpu'] * 1e3:.1f} | {found['cpu'] / bare['cpu']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every ``--python`` and print a Markdown table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="an interpreter to measure")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--task-root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.task_root)))
        return 0
    pythons = args.python or [sys.executable]
    with tempfile.TemporaryDirectory() as task_root:
        Path(task_root, "handlers.py").write_text(HANDLERS)
        summaries = [run_python(python, args.rounds, task_root) for python in pythons]
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2))
    print(table(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
