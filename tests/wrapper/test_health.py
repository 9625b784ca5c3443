"""``health_check_handler``: what a health endpoint may say, and what it never says."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from coverage_wrapper import coverage_handler, get_coverage_status, health_check_handler
from coverage_wrapper.__about__ import __version__
from coverage_wrapper.health_check import health_check_handler as direct_import
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, DEFAULT_S3_PREFIX, KeyTemplate
from coverage_wrapper.session import current_session
from coverage_wrapper.uploader import S3Uploader, UploadFailed
from tests.iam_patterns import Request, decide
from tests.wrapper.conftest import FUNCTION_NAME, REGION, lambda_context, uploads, write_module
from tests.wrapper.s3_servers import FaultProxy
from tests.wrapper.sample_functions import ORDERS


@pytest.fixture
def served(task_root: Path, bucket: str) -> Any:
    write_module(task_root, "orders.py", ORDERS)
    import orders  # type: ignore[import-not-found]

    handler = coverage_handler(orders.handler)
    handler({"prices": [4]}, lambda_context())
    return handler


def test_healthy_after_an_upload(served: Any) -> None:
    import coverage

    health = health_check_handler()
    assert direct_import is health_check_handler
    assert health["status"] == "healthy"
    assert health["coverage_enabled"] is True
    assert health["problems"] == []
    assert health["measurement"]["state"] == "idle"
    assert health["measurement"]["failure"] is None
    expected_core = {"ctrace": "CTracer", "sysmon": "SysMonitor", "pytrace": "PyTracer"}
    assert health["measurement"]["core"] == expected_core[_core_in_use()]
    assert health["last_flush"]["outcome"] == "uploaded"
    assert health["last_flush"]["s3_key"].endswith("-000001.coverage")
    assert health["last_flush"]["bytes"] > 0
    assert health["spool"]["pending_files"] == 0
    assert health["counters"]["invocations"] == 1
    assert health["versions"] == {
        "wrapper": __version__,
        "coverage": coverage.__version__,
        "python": platform.python_version(),
    }
    json.dumps(health)  # serialisable as it is


def test_no_secrets_and_no_environment_dump(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_PASSWORD", "hunter2-very-secret")
    text = json.dumps(health_check_handler())
    for secret in ("testing-secret-value", "hunter2-very-secret", "AWS_SECRET_ACCESS_KEY"):
        assert secret not in text
    assert "DATABASE_PASSWORD" not in text


def test_probe_checks_the_bucket_once_then_caches(served: Any, s3: Any, bucket: str) -> None:
    first = health_check_handler(probe_s3=True)
    assert first["s3_probe"]["writable"] is True
    probe_key = first["s3_probe"]["s3_key"]
    # Beside the function's data, in its own folder: {prefix}yyyy/mm/dd/orders/_health/...
    folder = probe_key.rpartition("/")[0] + "/"
    assert re.fullmatch(r"coverage/\d{4}/\d\d/\d\d/orders/_health/", folder), probe_key
    assert probe_key.endswith(f"-{os.getpid()}.probe")
    s3.delete_object(Bucket=bucket, Key=probe_key)
    second = health_check_handler(probe_s3=True)
    assert second["s3_probe"] == first["s3_probe"]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=folder)
    assert listing.get("KeyCount", 0) == 0  # cached: no second write


#: The caller the function's role makes of every request (the names are the test's own).
ROLE = "arn:aws:iam::123456789012:role/orders-role"


def function_grant(bucket: str) -> list[dict[str, Any]]:
    """The write grant the CDK constructs give the function: the key contract's IAM pattern
    (tests/constructs/test_security.py judges the synthesised grant itself)."""
    pattern = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE).iam_object_pattern(
        DEFAULT_S3_PREFIX, FUNCTION_NAME
    )
    resource = f"arn:aws:s3:::{bucket}/{pattern}"
    return [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": resource}]


def refused_by(identity: list[dict[str, Any]]) -> Callable[[str, str], bool]:
    """A gate for :class:`FaultProxy`: a PUT that ``identity`` does not allow is refused."""

    def refuse(method: str, path: str) -> bool:
        if method != "PUT":
            return False
        # Path-style addressing: /bucket/key.
        resource = "arn:aws:s3:::" + unquote(urlsplit(path).path).lstrip("/")
        request = Request("s3:PutObject", resource, ROLE, {"aws:SecureTransport": "true"})
        return decide(request, identity=identity) != "allow"

    return refuse


def test_the_probe_passes_the_grant_that_passes_the_data(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path, moto_url: str, monkeypatch: Any
) -> None:
    """The probe wrote {prefix}_health/..., outside the grant: a CDK-instrumented function
    was reported as "does not accept writes"."""
    grant = function_grant(bucket)
    with FaultProxy(moto_url, refuse=refused_by(grant)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        # The gate holds the function to its grant: the old probe place is refused.
        outside = S3Uploader(bucket, timeout=5, region=REGION)
        with pytest.raises(UploadFailed) as refused:
            outside.put("coverage/_health/c1-1.probe", b"ok", {}, deadline=time.monotonic() + 5)
        assert refused.value.code == "AccessDenied"

        write_module(task_root, "orders.py", ORDERS)
        import orders

        coverage_handler(orders.handler)({"prices": [4]}, lambda_context())
        health = health_check_handler(probe_s3=True)

    assert health["status"] == "healthy", health["problems"]
    assert health["problems"] == []
    assert health["s3_probe"]["writable"] is True
    probe_key = health["s3_probe"]["s3_key"]
    assert s3.get_object(Bucket=bucket, Key=probe_key)["Body"].read() == b"ok"
    (upload,) = uploads(s3, bucket, tmp_path)
    # The same function folder: {prefix}yyyy/mm/dd/orders/.
    assert upload.key.split("/")[:-2] == probe_key.split("/")[:-2]
    assert [status for _, _, status in proxy.log.puts()] == [403, 200, 200]


def test_a_refused_probe_does_not_pause_data_uploads(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path, moto_url: str, monkeypatch: Any
) -> None:
    """Without the extension, the probe's AccessDenied paused real uploads for five minutes."""
    # A bucket policy that takes the function's data but refuses its probes.
    with FaultProxy(moto_url, refuse=lambda method, path: path.endswith(".probe")) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        write_module(task_root, "orders.py", ORDERS)
        import orders

        handler = coverage_handler(orders.handler)
        handler({"prices": [10, 20]}, lambda_context("req-1"))
        health = health_check_handler(probe_s3=True)
        assert health["status"] == "degraded"
        assert health["s3_probe"]["error_code"] == "AccessDenied"
        assert health["problems"] == [
            f"the bucket does not accept writes: {health['s3_probe']['error']}"
        ]
        session = current_session()
        assert session is not None
        assert session.upload_pause_reason is None
        # Something new to flush: the discount's line.
        handler({"prices": [100, 20]}, lambda_context("req-2"))

    last = session.status.last_flush
    assert last is not None
    assert (last.outcome, last.error) == ("uploaded", None)
    found = uploads(s3, bucket, tmp_path)
    assert [upload.key.rpartition("-")[2] for upload in found] == [
        "000001.coverage",
        "000002.coverage",
    ]
    assert [status for _, _, status in proxy.log.puts()] == [200, 403, 200]


def test_probe_reports_a_bucket_that_refuses_writes(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", "no-such-bucket-anywhere")
    health = health_check_handler(probe_s3=True)
    assert health["status"] == "degraded"
    assert health["s3_probe"]["writable"] is False
    assert health["s3_probe"]["error_code"] == "NoSuchBucket"


def test_probe_is_off_by_default(served: Any) -> None:
    assert "s3_probe" not in health_check_handler()


def test_status_before_any_invocation_and_when_disabled(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = get_coverage_status()
    assert status["coverage_enabled"] is True
    assert status["measurement"]["state"] == "not-started"
    monkeypatch.setenv("COVERAGE_ENABLED", "false")
    from coverage_wrapper.session import reset_session

    reset_session()
    health = health_check_handler()
    assert health["coverage_enabled"] is False
    assert health["measurement"]["state"] == "disabled"
    assert health["versions"]["coverage"] is None


def test_missing_bucket_is_a_problem_that_says_what_to_do(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVERAGE_S3_BUCKET")
    write_module(task_root, "orders.py", ORDERS)
    import orders

    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    health = health_check_handler()
    assert health["status"] == "degraded"
    assert health["problems"][0].startswith("COVERAGE_S3_BUCKET is not set")
    assert "set it to the bucket's name" in health["problems"][0]
    assert health["spool"]["pending_files"] == 1


def _core_in_use() -> str:
    """The core coverage.py picks here: COVERAGE_CORE, else its own default."""
    import os
    import sys

    requested = os.environ.get("COVERAGE_CORE")
    if requested:
        return requested
    return "sysmon" if sys.version_info >= (3, 14) else "ctrace"


def test_a_second_handler_s_options_are_ignored_and_named(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    from tests.wrapper.conftest import uploads

    write_module(task_root, "orders.py", ORDERS)
    import orders

    first = coverage_handler(branch=True)(orders.handler)
    second = coverage_handler(branch=False, s3_prefix="other/")(orders.handler)
    assert first({"prices": [4]}, lambda_context("req-1")) == second(
        {"prices": [4]}, lambda_context("req-2")
    )
    health = health_check_handler()
    assert health["configuration"]["ignored_options"] == ["branch", "s3_prefix"]
    assert health["configuration"]["branch"] is True
    assert health["status"] == "degraded"
    assert any("(branch, s3_prefix)" in p for p in health["problems"])
    # The second handler's data is measured and stored with the first's options.
    found = uploads(s3, bucket, tmp_path)
    assert found
    assert all(upload.has_arcs for upload in found)
    assert not any(upload.key.startswith("other/") for upload in found)


def test_one_handler_ignores_no_option(served: Any) -> None:
    assert health_check_handler()["configuration"]["ignored_options"] == []
