"""Invoke the test stack's functions on the local runtime from the command line.

    python -m test_stack.local_lambda list
    python -m test_stack.local_lambda invoke main --event '{"operation": "add", "numbers": [1, 2]}'
    python -m test_stack.local_lambda invoke error --event '{"error_type": "key"}' --logs
    python -m test_stack.local_lambda invoke main --times 20 --concurrency 4 --coverage

Each invoke prints one JSON line (request id, container, cold start, duration,
error type, answer). ``--coverage`` runs the functions with the wrapper's
layer in zero-code mode against moto's S3 server and prints the coverage
report at the end. Exit codes: 0 no function error, 1 some, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, Final

from coverage_wrapper.keys import DEFAULT_S3_PREFIX
from test_stack.functions import CATALOGUE, LambdaFunction
from test_stack.invocations import InvokeResult

EXIT_OK: Final = 0
EXIT_FUNCTION_ERROR: Final = 1
EXIT_USAGE: Final = 2
BUCKET: Final = "lambda-coverage-cli"


def result_line(result: InvokeResult) -> str:
    """One invoke as a JSON line."""
    try:
        answer: Any = result.json()
    except ValueError:
        answer = result.payload.decode("utf-8", "replace")
    return json.dumps(
        {
            "function": result.function,
            "request_id": result.request_id,
            "container": result.container_id,
            "cold_start": result.init_duration_ms is not None,
            "init_ms": None
            if result.init_duration_ms is None
            else round(result.init_duration_ms, 1),
            "duration_ms": round(result.duration_ms, 2),
            "error_type": result.error_type,
            "answer": answer,
        }
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m test_stack.local_lambda``."""
    parser = argparse.ArgumentParser(
        prog="python -m test_stack.local_lambda",
        description="Run the test stack's functions under awslambdaric on a local Lambda runtime.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the functions")
    invoke = commands.add_parser("invoke", help="invoke a function")
    invoke.add_argument("function", choices=sorted(CATALOGUE))
    source = invoke.add_mutually_exclusive_group()
    source.add_argument("--event", help="the event as JSON (default {})")
    source.add_argument("--event-file", type=Path, help="a file holding the event as JSON")
    invoke.add_argument("--times", type=int, default=1, help="how many invokes (default 1)")
    invoke.add_argument("--concurrency", type=int, default=1, help="invokes at once (default 1)")
    invoke.add_argument(
        "--coverage",
        action="store_true",
        help="measure with the wrapper (zero-code) against moto's S3 and report",
    )
    invoke.add_argument("--out", default="out/local-lambda", help="report folder for --coverage")
    invoke.add_argument("--logs", action="store_true", help="print the containers' logs")
    return parser


def _event(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    text = args.event
    if args.event_file is not None:
        try:
            text = args.event_file.read_text()
        except OSError as exc:
            parser.error(f"cannot read --event-file {args.event_file}: {exc.strerror}")
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"the event is not JSON ({exc.msg} at character {exc.pos}): {text!r}")


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run one command; return the exit code."""
    stream = out if out is not None else sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        for entry in CATALOGUE.values():
            stream.write(f"{entry.name:<16} {entry.handler:<26} {entry.code_dir}\n")
        return EXIT_OK
    event = _event(args, parser)
    if args.times < 1 or args.concurrency < 1:
        parser.error("--times and --concurrency must be at least 1")
    from test_stack.pool import LocalLambda

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="local-lambda-")))
        function: LambdaFunction = CATALOGUE[args.function]
        environment: dict[str, str] = {}
        s3 = None
        # moto's state outlives its server within a process: a bucket of this run's own.
        bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
        if args.coverage:
            from test_stack.instrument import instrument
            from test_stack.layer import build_wrapper_layer
            from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

            url = stack.enter_context(moto_s3_server())
            s3 = s3_client(url)
            s3.create_bucket(Bucket=bucket)
            environment = s3_environment(url)
            function = instrument(function, layer=build_wrapper_layer(work / "opt"), bucket=bucket)
        with (
            LocalLambda(
                [function],
                work_dir=work,
                environment=environment,
                max_concurrency=args.concurrency,
                idle_timeout=None,
            ) as pool,
            ThreadPoolExecutor(max_workers=args.concurrency) as workers,
        ):
            results = list(
                workers.map(lambda _: pool.invoke(function.name, event), range(args.times))
            )
        for result in results:
            stream.write(result_line(result) + "\n")
        if args.logs:
            # Every container's log, including ones retired after a crash or timeout.
            for log in sorted((work / "logs").rglob("*.log")):
                stream.write(f"--- log of container {log.stem}\n{log.read_text(errors='replace')}")
        if s3 is not None:
            from test_stack.load_summary import format_report
            from test_stack.report import report_from_s3

            report = report_from_s3(
                s3, bucket, DEFAULT_S3_PREFIX, {function.name: function.code_dir}, Path(args.out)
            )
            stream.write("\n" + format_report(report) + "\n")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FUNCTION_ERROR


if __name__ == "__main__":
    sys.exit(main())
