"""The load test on the local runtime: moto's S3, the layer, real ``awslambdaric`` containers."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from coverage_wrapper.keys import DEFAULT_S3_PREFIX
from test_stack.functions import CATALOGUE
from test_stack.load_driver import Outcome, Progress, drive
from test_stack.report import CoverageReport, report_from_s3
from test_stack.scenarios import Scenario

LOCAL_BUCKET: Final = "lambda-coverage-local"
COVERAGE_PREFIX: Final = DEFAULT_S3_PREFIX


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
