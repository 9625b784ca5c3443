"""Each class of S3 failure is retried, paused on or given up on as it should be.

Transient and throttling errors are botocore's classification; configuration
errors are ours. Every failure here comes from a real boto3 client talking
to moto's server through a proxy that answers as S3 does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coverage_wrapper.uploader import (
    CONFIG_ERROR_PAUSE,
    TRANSIENT_ERROR_PAUSE,
    S3Uploader,
    UploadFailed,
)
from tests.wrapper.conftest import WatchedClock, make_clients
from tests.wrapper.s3_servers import ACCESS_DENIED, INTERNAL_ERROR, SLOW_DOWN, Fault, FaultProxy


@pytest.fixture
def proxy(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault proxy that the uploader's client uses as its S3 endpoint."""
    with FaultProxy(moto_url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", running.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield running


def put(uploader: S3Uploader, budget: float) -> UploadFailed | None:
    """One upload with ``budget`` seconds; the failure, if it failed."""
    try:
        uploader.put("k.coverage", b"x", {}, deadline=uploader.clock() + budget)
    except UploadFailed as failure:
        return failure
    return None


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (INTERNAL_ERROR, "transient"),  # a 5xx
        (Fault(502, "BadGateway"), "transient"),
        (SLOW_DOWN, "transient"),  # S3's throttling, a 503
        (Fault(400, "Throttling"), "transient"),  # throttling by its code alone
        (Fault(429, "TooManyRequests"), "transient"),  # throttling by its status alone
        (ACCESS_DENIED, "config"),
        (Fault(404, "NoSuchBucket"), "config"),
        (Fault(400, "ExpiredToken"), "config"),
        (Fault(400, "InvalidArgument"), "rejected"),
    ],
)
def test_each_failure_is_classified(
    proxy: FaultProxy, bucket: str, fault: Fault, kind: str
) -> None:
    clock = WatchedClock()
    uploader = S3Uploader(bucket, timeout=5, region="eu-west-1", clock=clock)
    # Make the clients first, so that the budget is spent on attempts.
    make_clients(uploader, 2.0)
    proxy.inject(*[fault] * 100)
    failure = put(uploader, 2.0)
    assert failure is not None
    assert (failure.kind, failure.code) == (kind, fault.code)
    attempts = len(proxy.log.puts())
    assert failure.attempts == attempts
    if kind == "transient":
        assert attempts > 1  # retried within the budget
    else:
        assert attempts == 1
    # Everything but a rejected object pauses uploads (from the failure on).
    assert (uploader.paused_until > clock.last) is (kind != "rejected")


def test_a_transient_outage_pauses_uploads_for_a_growing_while(
    proxy: FaultProxy, bucket: str
) -> None:
    clock = WatchedClock()
    uploader = S3Uploader(bucket, timeout=5, region="eu-west-1", clock=clock)
    pauses: list[float] = []
    for _ in range(3):
        proxy.inject(*[SLOW_DOWN] * 100)
        uploader.paused_until = 0.0  # as if the pause had run out
        failure = put(uploader, 0.3)
        failed_at = clock.last  # when the pause was set
        assert failure is not None
        assert failure.kind == "transient"
        assert uploader.pause_reason == f"S3 answered SlowDown for s3://{bucket}/k.coverage"
        pauses.append(uploader.paused_until - failed_at)
        proxy.faults.clear()
    assert pauses == pytest.approx(
        [TRANSIENT_ERROR_PAUSE, 2 * TRANSIENT_ERROR_PAUSE, 4 * TRANSIENT_ERROR_PAUSE], abs=1e-9
    )
    # A success ends the growth: the next outage starts from the shortest pause again.
    uploader.paused_until = 0.0
    assert put(uploader, 30.0) is None  # time enough for a loaded machine
    proxy.inject(*[INTERNAL_ERROR] * 100)
    assert put(uploader, 0.3) is not None
    assert uploader.paused_until - clock.last == pytest.approx(TRANSIENT_ERROR_PAUSE, abs=1e-9)


def test_a_configuration_error_pauses_uploads_for_minutes(proxy: FaultProxy, bucket: str) -> None:
    clock = WatchedClock()
    uploader = S3Uploader(bucket, timeout=5, region="eu-west-1", clock=clock)
    proxy.inject(ACCESS_DENIED)
    failure = put(uploader, 1.0)
    assert failure is not None
    assert uploader.paused_until - clock.last == pytest.approx(CONFIG_ERROR_PAUSE, abs=1e-9)
