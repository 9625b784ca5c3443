"""Drive the test stack's functions with every scenario, then report coverage.

``python -m test_stack.loadtest`` runs against the local runtime by default:
moto's S3 server on 127.0.0.1, the wrapper's layer in zero-code mode, real
``awslambdaric`` containers. ``--target aws --stack NAME`` invokes a deployed
test stack instead, finding its functions and bucket in the stack's
CloudFormation outputs. Either way it prints per-function latency
percentiles and error counts, then merges the coverage data from S3 and
prints the report with the path of the HTML.

Exit codes: 0 every answer was as expected, 1 some were not, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from test_stack.aws_target import (
    BUCKET_OUTPUT,
    FUNCTION_OUTPUTS,
    aws_invoker,
    deployed_functions,
    stack_outputs,
)
from test_stack.functions import CATALOGUE
from test_stack.load_driver import Progress, drive
from test_stack.load_summary import all_as_expected, format_report, format_summary, summarize
from test_stack.local_run import COVERAGE_PREFIX, run_local
from test_stack.report import report_from_s3
from test_stack.scenarios import scenarios_for

EXIT_OK: Final = 0
EXIT_FAILURES: Final = 1
EXIT_USAGE: Final = 2


def run_aws(args: argparse.Namespace, out: IO[str]) -> int:
    """Run the scenarios against a deployed stack and report from its bucket."""
    import boto3
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    session = boto3.Session(region_name=args.region)
    try:
        outputs = stack_outputs(session.client("cloudformation"), args.stack)
    except NoRegionError:
        sys.stderr.write(
            "--target aws needs a region: pass --region NAME, "
            "or set AWS_REGION or a profile's region\n"
        )
        return EXIT_USAGE
    except NoCredentialsError:
        sys.stderr.write(
            "--target aws found no AWS credentials: set AWS_PROFILE or run `aws configure` "
            "(or `aws sso login`)\n"
        )
        return EXIT_USAGE
    except ClientError as error:
        # A missing stack or expired credentials: the service's own words say which.
        sys.stderr.write(f"--target aws cannot read stack {args.stack!r}: {error}\n")
        return EXIT_USAGE
    names = deployed_functions(outputs)
    wanted = scenarios_for(args.functions)
    missing = sorted({s.function for s in wanted} - set(names))
    if missing:
        out.write(
            f"Stack {args.stack} has no output for {', '.join(missing)} "
            f"(expected {', '.join(FUNCTION_OUTPUTS[m] for m in missing)}); skipping them.\n"
        )
    scenarios = [s for s in wanted if s.function in names]
    if not scenarios:
        out.write("Nothing to invoke.\n")
        return EXIT_USAGE
    outcomes = drive(
        aws_invoker(session.client("lambda"), names),
        scenarios,
        iterations=args.iterations,
        count=args.count,
        concurrency=args.concurrency,
        progress=Progress(args.iterations * args.count * len(scenarios)),
    )
    summaries = summarize(outcomes)
    out.write(format_summary(summaries) + "\n\n")
    bucket = outputs.get(BUCKET_OUTPUT)
    if bucket is None:
        out.write(f"Stack {args.stack} has no {BUCKET_OUTPUT} output: no coverage report.\n")
    else:
        code_dirs = {name: CATALOGUE[name].code_dir for name in names}
        report = report_from_s3(
            session.client("s3"), bucket, args.prefix, code_dirs, Path(args.out)
        )
        out.write(format_report(report) + "\n")
    return EXIT_OK if all_as_expected(summaries) else EXIT_FAILURES


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m test_stack.loadtest``."""
    parser = argparse.ArgumentParser(
        prog="python -m test_stack.loadtest",
        description="Invoke the test stack's functions with every scenario, then report coverage.",
    )
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="local runtime with moto's S3 (default) or a deployed stack",
    )
    parser.add_argument("--stack", help="the deployed test stack's name (with --target aws)")
    parser.add_argument("--region", help="AWS region of the stack (default: from your AWS setup)")
    parser.add_argument(
        "--iterations", type=_positive, default=2, help="rounds of all scenarios (default 2)"
    )
    parser.add_argument(
        "--count", type=_positive, default=1, help="invokes of each scenario per round (default 1)"
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=4, help="invokes in flight at once (default 4)"
    )
    parser.add_argument(
        "--function",
        dest="functions",
        action="append",
        choices=sorted(CATALOGUE),
        help="only this function (repeatable; default: all)",
    )
    parser.add_argument(
        "--out", default="out/load-test", help="folder for the merged data and the HTML report"
    )
    parser.add_argument(
        "--prefix", default=COVERAGE_PREFIX, help="key prefix of the data files in the bucket"
    )
    return parser


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the load test; return the exit code."""
    stream = out if out is not None else sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.target == "aws" and not args.stack:
        parser.error("--target aws needs --stack NAME (the deployed test stack)")
    if args.target == "local" and args.stack:
        parser.error("--stack only applies to --target aws")
    if args.target == "aws":
        return run_aws(args, stream)
    stream.write(
        f"Load test on the local runtime: {args.iterations} iteration(s), "
        f"concurrency {args.concurrency}\n"
    )
    run = run_local(
        scenarios_for(args.functions),
        iterations=args.iterations,
        count=args.count,
        concurrency=args.concurrency,
        out_dir=Path(args.out),
    )
    summaries = summarize(run.outcomes)
    stream.write(format_summary(summaries) + "\n\n")
    stream.write(format_report(run.report) + "\n")
    stream.write(f"Finished in {run.elapsed_s:.1f}s\n")
    return EXIT_OK if all_as_expected(summaries) else EXIT_FAILURES


if __name__ == "__main__":
    sys.exit(main())
