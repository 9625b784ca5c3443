"""Fixtures for the wrapper's tests: a Lambda-like process environment and S3 on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import coverage
import pytest
from awslambdaric.lambda_context import LambdaContext

from coverage_wrapper.identity import reset_container_id
from coverage_wrapper.session import reset_session
from coverage_wrapper.uploader import ATTEMPT_CAPS, S3Uploader
from tests.wrapper.s3_servers import moto_s3_server
from tests.wrapper.sample_functions import ORDERS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FUNCTION_NAME = "orders"
REGION = "eu-west-1"
_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, shared by the whole session."""
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def s3(moto_url: str) -> S3Client:
    """A client for the moto server (the test's view of S3)."""
    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"coverage-test-{os.getpid()}-{next(_bucket_numbers)}"


@pytest.fixture
def bucket(s3: S3Client, bucket_name: str) -> str:
    """A fresh, empty bucket on the moto server."""
    s3.create_bucket(
        Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return bucket_name


@pytest.fixture
def task_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str, bucket_name: str
) -> Iterator[Path]:
    """A process that looks like a Lambda execution environment.

    The task root is the working directory and first on ``sys.path``; the
    spool is private to the test; S3 is the moto server. Every ``COVERAGE_*``
    variable of the outer environment is removed. The wrapper's process state
    is reset before and after, and modules imported from the task root are
    forgotten.
    """
    root = tmp_path / "task"
    root.mkdir()
    for name in list(os.environ):
        if name.startswith(("COVERAGE_", "AWS_")):
            monkeypatch.delenv(name)
    env = {
        "LAMBDA_TASK_ROOT": str(root),
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "COVERAGE_S3_BUCKET": bucket_name,
        "COVERAGE_SPOOL_DIR": str(tmp_path / "spool"),
        "COVERAGE_UPLOAD_TIMEOUT": "5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    reset_session()
    reset_container_id()
    before = set(sys.modules)
    yield root
    reset_session()
    reset_container_id()
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(root)) or name == "coverage_wrapper.handler":
            del sys.modules[name]


def write_module(root: Path, relative: str, text: str) -> Path:
    """Write a source file under the task root (folders created)."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def orders(task_root: Path) -> Any:
    """The order service of :mod:`tests.wrapper.sample_functions`, imported from the task root."""
    write_module(task_root, "orders.py", ORDERS)
    import orders  # type: ignore[import-not-found]

    return orders


def lambda_context(request_id: str = "req-1", remaining_ms: int = 60_000) -> LambdaContext:
    """The context object the real runtime client passes to handlers."""
    return LambdaContext(
        request_id,
        None,
        None,
        int(time.time() * 1000) + remaining_ms,
        f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}",
    )


def make_clients(uploader: S3Uploader, longest: float) -> None:
    """Make the uploader's S3 clients for every attempt of up to ``longest`` seconds first,
    as a process's first uploads make them (each costs ~0.3 s of CPU, far more on a
    loaded machine), so that a budget measured afterwards goes to S3 alone."""
    for cap in ATTEMPT_CAPS:
        if cap <= longest:
            uploader.client(cap)


class WatchedClock:
    """``time.monotonic``, remembering the last time it told.

    An uploader on this clock sets a pause from the clock's last reading, so
    a test reads the pause exactly, however late it looks.
    """

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> float:
        self.last = time.monotonic()
        return self.last


class HeldContext(LambdaContext):  # type: ignore[misc]  # awslambdaric has no types
    """The runtime's context, whose remaining time stays where the test put it.

    What a call may spend then follows from the test's numbers, not from how
    long a loaded machine took to get there.
    """

    def __init__(self, request_id: str, remaining_ms: int) -> None:
        super().__init__(
            request_id,
            None,
            None,
            int(time.time() * 1000) + remaining_ms,
            f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}",
        )
        self.held_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        """The remaining time the test set."""
        return self.held_ms


@dataclass(frozen=True)
class Upload:
    """One data file as it landed in S3, read through coverage.py's public API."""

    key: str
    metadata: dict[str, str]
    lines: dict[str, set[int]]
    arcs: dict[str, set[tuple[int, int]]]
    contexts: set[str]
    has_arcs: bool


def uploads(s3: S3Client, bucket: str, tmp_path: Path) -> list[Upload]:
    """Every ``.coverage`` object in ``bucket``, oldest key first."""
    found: list[Upload] = []
    listing = s3.list_objects_v2(Bucket=bucket)
    for item in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
        key = item["Key"]
        if not key.endswith(".coverage"):
            continue
        obj = s3.get_object(Bucket=bucket, Key=key)
        local = tmp_path / f"download-{len(found)}.coverage"
        local.write_bytes(obj["Body"].read())
        data = coverage.CoverageData(basename=str(local))
        data.read()
        files = data.measured_files()
        found.append(
            Upload(
                key=key,
                metadata=dict(obj["Metadata"]),
                lines={f: set(data.lines(f) or ()) for f in files},
                arcs={f: set(data.arcs(f) or ()) for f in files},
                contexts=set(data.measured_contexts()),
                has_arcs=data.has_arcs(),
            )
        )
    return found


def union_lines(found: list[Upload]) -> dict[str, set[int]]:
    """Executed lines per file over all uploads."""
    merged: dict[str, set[int]] = {}
    for upload in found:
        for name, lines in upload.lines.items():
            merged.setdefault(name, set()).update(lines)
    return merged


def union_arcs(found: list[Upload]) -> dict[str, set[tuple[int, int]]]:
    """Executed arcs per file over all uploads."""
    merged: dict[str, set[tuple[int, int]]] = {}
    for upload in found:
        for name, arcs in upload.arcs.items():
            merged.setdefault(name, set()).update(arcs)
    return merged


Handler = Callable[[Any, Any], Any]


#: The compiled coverage.py cores the wrapper runs on: ctrace everywhere, sysmon from 3.12.
CORES = [
    "ctrace",
    pytest.param(
        "sysmon",
        marks=pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs 3.12"),
    ),
]


def use_core(monkeypatch: pytest.MonkeyPatch, core: str) -> None:
    """Measure with ``core`` (line data only on sysmon before 3.14: it has no branch data there)."""
    monkeypatch.setenv("COVERAGE_CORE", core)
    if core == "sysmon" and sys.version_info < (3, 14):
        monkeypatch.setenv("COVERAGE_BRANCH_COVERAGE", "false")
