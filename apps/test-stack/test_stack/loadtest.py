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
import json
import math
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from coverage_wrapper.keys import DEFAULT_S3_PREFIX
from test_stack.container import InvokeResult
from test_stack.functions import CATALOGUE
from test_stack.report import CoverageReport, report_from_s3
from test_stack.scenarios import Scenario, scenarios_for

if TYPE_CHECKING:
    from boto3 import Session
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient

EXIT_OK: Final = 0
EXIT_FAILURES: Final = 1
EXIT_USAGE: Final = 2

LOCAL_BUCKET: Final = "lambda-coverage-local"
COVERAGE_PREFIX: Final = DEFAULT_S3_PREFIX
#: The test stack's CloudFormation outputs: function name per catalogue function.
FUNCTION_OUTPUTS: Final = {
    "main": "MainFunctionName",
    "simple": "SimpleFunctionName",
    "error": "ErrorFunctionName",
    "example-simple": "ExampleSimpleFunctionName",
}
BUCKET_OUTPUT: Final = "CoverageBucketName"

Invoker = Callable[[Scenario], InvokeResult]


# Driving ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One invoke of one scenario: the answer, the caller's latency, what was wrong."""

    scenario: Scenario
    result: InvokeResult
    latency_ms: float
    problem: str | None


class Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._lock = threading.Lock()

    def advance(self, failed: bool) -> None:
        """Count one finished invoke and redraw."""
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            if self.enabled:
                width = 30
                filled = width * self.done // max(1, self.total)
                bar = "#" * filled + "." * (width - filled)
                self.stream.write(
                    f"\r  [{bar}] {self.done}/{self.total} invokes, {self.failed} failed"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()


def drive(
    invoke: Invoker,
    scenarios: Sequence[Scenario],
    *,
    iterations: int,
    count: int,
    concurrency: int,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Send every scenario ``count`` times per iteration, ``concurrency`` at a time."""
    plan = [s for _ in range(iterations) for s in scenarios for _ in range(count)]

    def one(scenario: Scenario) -> Outcome:
        started = time.perf_counter()
        result = invoke(scenario)
        latency = (time.perf_counter() - started) * 1000
        outcome = Outcome(scenario, result, latency, scenario.problem(result))
        if progress is not None:
            progress.advance(outcome.problem is not None)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, plan))


# Summaries -------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class FunctionSummary:
    """Latency and errors of one function over the run."""

    function: str
    latencies: list[float] = field(default_factory=list)
    cold_starts: int = 0
    expected_errors: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def invokes(self) -> int:
        """How many invokes ran."""
        return len(self.latencies)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, FunctionSummary]:
    """Group the outcomes by function."""
    summaries: dict[str, FunctionSummary] = {}
    for outcome in outcomes:
        name = outcome.scenario.function
        summary = summaries.setdefault(name, FunctionSummary(name))
        summary.latencies.append(outcome.latency_ms)
        summary.cold_starts += int(outcome.result.init_duration_ms is not None)
        if outcome.problem is not None:
            summary.failures.append(f"{outcome.scenario.name}: {outcome.problem}")
        elif outcome.scenario.expected_error is not None:
            summary.expected_errors += 1
    return summaries


def format_summary(summaries: Mapping[str, FunctionSummary]) -> str:
    """The latency and error table, then each unexpected failure."""
    header = (
        f"{'function':<16} {'invokes':>7} {'cold':>5} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'expected errors':>15} {'failures':>8}"
    )
    lines = [header, "-" * len(header)]
    for summary in summaries.values():
        lat = summary.latencies
        lines.append(
            f"{summary.function:<16} {summary.invokes:>7} {summary.cold_starts:>5} "
            f"{percentile(lat, 0.50):>8.1f} {percentile(lat, 0.95):>8.1f} "
            f"{percentile(lat, 0.99):>8.1f} {summary.expected_errors:>15} "
            f"{len(summary.failures):>8}"
        )
    failures = [f"  {s.function}: {f}" for s in summaries.values() for f in s.failures]
    if failures:
        lines += ["", "Unexpected answers:", *failures[:20]]
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
    return "\n".join(lines)


def format_report(report: CoverageReport) -> str:
    """The coverage table and where the HTML is."""
    lines = [report.table.rstrip()]
    for key, why in report.skipped:
        lines.append(f"skipped {key}: {why}")
    if report.measured_files:
        lines.append(f"\nHTML report: {(report.html_dir / 'index.html').resolve()}")
    return "\n".join(lines)


# Local target ----------------------------------------------------------------


@dataclass
class LocalRun:
    """Everything a local load test produced."""

    outcomes: list[Outcome]
    report: CoverageReport
    elapsed_s: float
    bucket: str


def run_local(
    scenarios: Sequence[Scenario],
    *,
    iterations: int,
    count: int,
    concurrency: int,
    out_dir: Path,
    progress_stream: IO[str] | None = None,
) -> LocalRun:
    """Run the scenarios on the local runtime with the wrapper, then report from S3.

    Starts moto's S3 server, builds the layer, serves the instrumented
    functions, and stops everything again before returning.
    """
    from test_stack.instrument import instrument
    from test_stack.layer import build_wrapper_layer
    from test_stack.pool import LocalLambda
    from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

    started = time.monotonic()
    names = sorted({s.function for s in scenarios})
    # moto keeps its state per process, not per server: a bucket of our own
    # keeps an earlier run's files in this process out of this run's report.
    bucket = f"{LOCAL_BUCKET}-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="lambda-coverage-run-") as work,
        moto_s3_server() as url,
    ):
        s3 = s3_client(url)
        s3.create_bucket(Bucket=bucket)
        layer = build_wrapper_layer(Path(work) / "opt")
        functions = [
            instrument(CATALOGUE[name], layer=layer, bucket=bucket, prefix=COVERAGE_PREFIX)
            for name in names
        ]
        with LocalLambda(
            functions,
            work_dir=Path(work),
            environment=s3_environment(url),
            max_concurrency=concurrency,
            idle_timeout=None,
        ) as pool:
            outcomes = drive(
                lambda s: pool.invoke(s.function, s.event),
                scenarios,
                iterations=iterations,
                count=count,
                concurrency=concurrency,
                progress=Progress(iterations * count * len(scenarios), progress_stream),
            )
        # Every container is retired by now, so anything sent at shutdown is in S3 too.
        code_dirs = {name: CATALOGUE[name].code_dir for name in names}
        report = report_from_s3(s3, bucket, COVERAGE_PREFIX, code_dirs, out_dir)
    return LocalRun(outcomes, report, time.monotonic() - started, bucket)


# AWS target --------------------------------------------------------------------


def stack_outputs(cloudformation: CloudFormationClient, stack: str) -> dict[str, str]:
    """The outputs of a CloudFormation stack, by output key."""
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    if not stacks:
        raise LookupError(f"no stack named {stack!r}")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def deployed_functions(outputs: Mapping[str, str]) -> dict[str, str]:
    """Deployed function name per catalogue function, from the stack's outputs."""
    return {name: outputs[key] for name, key in FUNCTION_OUTPUTS.items() if key in outputs}


def aws_invoker(client: LambdaClient, names: Mapping[str, str]) -> Invoker:
    """Invoke deployed functions with boto3 (``RequestResponse``)."""

    def invoke(scenario: Scenario) -> InvokeResult:
        started = time.perf_counter()
        response = client.invoke(
            FunctionName=names[scenario.function],
            InvocationType="RequestResponse",
            Payload=json.dumps(scenario.event).encode(),
        )
        payload = response["Payload"].read()
        error_type = None
        if response.get("FunctionError"):
            error_type = _error_type(payload)
        return InvokeResult(
            function=scenario.function,
            request_id=response["ResponseMetadata"].get("RequestId", ""),
            container_id="",
            payload=payload,
            error_type=error_type,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    return invoke


def _error_type(payload: bytes) -> str:
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        return "Unhandled"
    return str(parsed.get("errorType", "Unhandled")) if isinstance(parsed, dict) else "Unhandled"


def aws_setup_problem(session: Session) -> str | None:
    """What keeps ``session`` from calling AWS at all (no region, no credentials), or ``None``."""
    if not session.region_name:
        return "no AWS region: pass --region, or set AWS_DEFAULT_REGION or a region in your profile"
    if session.get_credentials() is None:
        return "no AWS credentials: run aws configure or aws sso login, or set AWS_PROFILE"
    return None


def run_aws(args: argparse.Namespace, out: IO[str]) -> int:
    """Run the scenarios against a deployed stack and report from its bucket."""
    import boto3
    from botocore.exceptions import ClientError

    session = boto3.Session(region_name=args.region)
    problem = aws_setup_problem(session)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        outputs = stack_outputs(session.client("cloudformation"), args.stack)
    except ClientError as error:
        # A missing stack or expired credentials: the service's own words say which.
        print(f"error: cannot read stack {args.stack!r}: {error}", file=sys.stderr)
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
    return EXIT_FAILURES if any(s.failures for s in summaries.values()) else EXIT_OK


# Command line ------------------------------------------------------------------


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
    return EXIT_FAILURES if any(s.failures for s in summaries.values()) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
