"""The canary: after publishing, a function with the new layer runs a known handler.

A :class:`Canary` checks one region's new layer version and returns a
:class:`CanaryResult`. Every implementation runs the same function code
(:data:`CANARY_CODE_DIR`, handler :data:`CANARY_HANDLER`, in zero-code mode
with :func:`canary_environment`) with :data:`CANARY_EVENT`, and passes what it
saw to :func:`judge`, so the assertions are the same everywhere:

- the executed lines of the canary's module that land in S3 are exactly
  :data:`EXPECTED_LINES`;
- the function ran on the layer's architecture;
- coverage.py measured with its compiled core (``CTracer`` or
  ``SysMonitor``), never the pure-Python ``PyTracer``;
- no module of the layer was recompiled at cold start.

:class:`AwsCanary` creates, invokes and deletes a real function. The local
implementation, which runs the zip under awslambdaric on this machine, is
``test_stack.layer_canary.LocalCanary`` in the test stack app.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from coverage import CoverageData

from coverage_wrapper.constants import ENV_FLUSH_POLICY, ZERO_CODE_HANDLER
from coverage_wrapper.instrumentation import coverage_environment, zero_code_environment

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

#: The canary function's code folder (handler module and its probe).
CANARY_CODE_DIR: Final = Path(__file__).resolve().parent / "canary_function"
CANARY_MODULE_FILE: Final = "lambda_coverage_canary.py"
CANARY_HANDLER: Final = "lambda_coverage_canary.handler"
#: The event every canary invoke sends.
CANARY_EVENT: Final = {"numbers": [1, 2, 3]}
#: The lines of ``lambda_coverage_canary.py`` that CANARY_EVENT executes (import included).
EXPECTED_LINES: Final = frozenset({1, 3, 5, 8, 11, 13, 14, 15, 16, 18, 19, 22})
#: Cores of coverage.py that are compiled; ``PyTracer`` is the slow fallback.
COMPILED_CORES: Final = frozenset({"CTracer", "SysMonitor"})
#: ``platform.machine()`` on each of Lambda's architectures.
MACHINE_OF: Final = {"x86_64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class CanaryResult:
    """What the canary found in one region; ``problems`` is empty when it passed."""

    region: str
    layer_arn: str
    python: str | None
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """``True`` when every assertion held."""
        return not self.problems


class Canary(Protocol):
    """Runs the canary function with a published layer version in one region."""

    def check(self, region: str, layer_arn: str, architecture: str) -> CanaryResult:
        """Run the canary against ``layer_arn`` (built for ``architecture``) in ``region``."""
        ...


def canary_environment(bucket: str, prefix: str) -> dict[str, str]:
    """The canary function's variables: zero-code mode, data to ``bucket``/``prefix`` per invoke."""
    return {
        **coverage_environment(bucket=bucket, prefix=prefix),
        **zero_code_environment(CANARY_HANDLER),
        ENV_FLUSH_POLICY: "invocation",
    }


def executed_lines(s3: S3Client, bucket: str, prefix: str) -> frozenset[int] | None:
    """The canary module's executed lines in every data file under ``prefix``; ``None`` if none."""
    found: set[int] | None = None
    listing = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-canary-") as work:
        for index, item in enumerate(o for page in listing for o in page.get("Contents", [])):
            local = Path(work) / f"data-{index}"
            s3.download_file(bucket, item["Key"], str(local))
            data = CoverageData(str(local))
            data.read()
            for measured in data.measured_files():
                if Path(measured).name == CANARY_MODULE_FILE:
                    found = (found or set()) | set(data.lines(measured) or ())
    return None if found is None else frozenset(found)


def judge(
    region: str,
    layer_arn: str,
    architecture: str,
    answer: Any,
    lines: frozenset[int] | None,
) -> CanaryResult:
    """The canary's assertions on the function's ``answer`` and the ``lines`` found in S3."""
    problems: list[str] = []
    if not isinstance(answer, dict) or "core" not in answer:
        return CanaryResult(region, layer_arn, None, (f"the function failed: {answer!r}",))
    if answer.get("total") != 2:
        problems.append(f"the handler answered total={answer.get('total')!r}, expected 2")
    if answer["machine"] != MACHINE_OF[architecture]:
        problems.append(
            f"the function ran on {answer['machine']}, not on {MACHINE_OF[architecture]} "
            f"({architecture}): the layer and the function disagree on the architecture"
        )
    if answer["core"] not in COMPILED_CORES:
        problems.append(
            f"coverage.py measured with {answer['core']!r}, not a compiled core "
            f"({', '.join(sorted(COMPILED_CORES))}): the layer's tracer does not load on "
            f"Python {answer['python']}"
        )
    if answer["recompiled"]:
        problems.append(
            f"{len(answer['recompiled'])} modules of the layer were recompiled at cold start "
            f"(no usable checked-hash .pyc), e.g. {', '.join(answer['recompiled'][:3])}"
        )
    if lines is None:
        problems.append("no coverage data for the canary's handler landed in S3")
    elif lines != EXPECTED_LINES:
        problems.append(
            f"the executed lines in S3 are {sorted(lines)}, expected {sorted(EXPECTED_LINES)}"
        )
    return CanaryResult(region, layer_arn, str(answer["python"]), tuple(problems))


def canary_code_zip() -> bytes:
    """The canary function's code as a deployment package."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(CANARY_CODE_DIR.glob("*.py")):
            archive.write(source, source.name)
    return buffer.getvalue()


class AwsCanary:
    """The canary on AWS: create a function with the layer, invoke it, read S3, delete it.

    ``bucket`` may contain ``{region}`` (one bucket per region); ``role_arn``
    is an execution role that may write to it. Not exercised by this
    repository's tests (they need an account); the assertions are
    :func:`judge`, as for the local canary.
    """

    def __init__(
        self,
        *,
        lambda_client: Callable[[str], LambdaClient],
        s3_client: Callable[[str], S3Client],
        role_arn: str,
        bucket: str,
        runtime: str = "python3.12",
        data_timeout: float = 90.0,
    ) -> None:
        self._lambda = lambda_client
        self._s3 = s3_client
        self.role_arn = role_arn
        self.bucket = bucket
        self.runtime = runtime
        self.data_timeout = data_timeout

    def check(self, region: str, layer_arn: str, architecture: str) -> CanaryResult:
        """Run the canary function in ``region`` with ``layer_arn``; always delete it after."""
        client, s3 = self._lambda(region), self._s3(region)
        bucket = self.bucket.format(region=region)
        run = uuid.uuid4().hex[:12]
        name, prefix = f"lambda-coverage-canary-{run}", f"canary/{run}/"
        client.create_function(
            FunctionName=name,
            Runtime=self.runtime,  # type: ignore[arg-type]
            Role=self.role_arn,
            Handler=ZERO_CODE_HANDLER,
            Code={"ZipFile": canary_code_zip()},
            Architectures=[architecture],  # type: ignore[list-item]
            Layers=[layer_arn],
            Timeout=60,
            Environment={"Variables": canary_environment(bucket, prefix)},
        )
        try:
            client.get_waiter("function_active_v2").wait(FunctionName=name)
            reply = client.invoke(FunctionName=name, Payload=json.dumps(CANARY_EVENT).encode())
            answer = json.loads(reply["Payload"].read())
            deadline = time.monotonic() + self.data_timeout
            lines = executed_lines(s3, bucket, prefix)
            while lines is None and time.monotonic() < deadline:
                time.sleep(5)
                lines = executed_lines(s3, bucket, prefix)
        finally:
            client.delete_function(FunctionName=name)
        return judge(region, layer_arn, architecture, answer, lines)
