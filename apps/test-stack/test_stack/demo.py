"""``make demo``: the whole job end to end on this machine, no AWS account needed.

Starts moto's S3 server on 127.0.0.1, runs one round of the load test on the
local runtime (real ``awslambdaric`` containers, the wrapper's layer in
zero-code mode: ``_HANDLER=coverage_wrapper.handler.handler`` with the real
handler in ``COVERAGE_ORIGINAL_HANDLER``), lists what landed in S3, merges
it, prints the coverage table and writes the HTML report. Everything it
started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from test_stack.load_summary import all_as_expected, format_report, format_summary, summarize
from test_stack.local_run import run_local
from test_stack.report import CoverageReport
from test_stack.scenarios import scenarios_for


def describe_bucket(bucket: str, report: CoverageReport, invocations: int) -> str:
    """What landed in S3 for how many invocations: files and bytes per function, a few keys.

    The layer's extension uploads after the answers and at shutdown, and only
    snapshots that hold something new, so there are far fewer files than
    invocations.
    """
    per_function = Counter(item.function for item in report.stored)
    size = sum(item.size for item in report.stored)
    lines = [
        f"{len(report.stored)} data files in s3://{bucket}/ ({size / 1024:.0f} KiB) "
        f"for {invocations} invocations:"
    ]
    lines += [f"  {name:<16} {count:>4} files" for name, count in sorted(per_function.items())]
    lines += [f"  e.g. {item.key}" for item in report.stored[:3]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the demo; return 0 when every answer was as expected."""
    stream = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="where the report goes (out/demo)")
    args = parser.parse_args(argv)
    scenarios = scenarios_for()
    functions = sorted({s.function for s in scenarios})
    stream.write(
        f"Lambda Coverage demo: {len(scenarios)} events to {len(functions)} functions "
        f"({', '.join(functions)}) on the local runtime, data to moto's S3 on 127.0.0.1\n\n"
    )
    stream.flush()
    run = run_local(scenarios, iterations=1, count=1, concurrency=4, out_dir=Path(args.out))
    summaries = summarize(run.outcomes)
    stream.write(format_summary(summaries) + "\n\n")
    stream.write(describe_bucket(run.bucket, run.report, len(run.outcomes)) + "\n\n")
    stream.write(format_report(run.report) + "\n")
    stream.write(f"\nDone in {run.elapsed_s:.1f}s; nothing is left running.\n")
    return 0 if all_as_expected(summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
