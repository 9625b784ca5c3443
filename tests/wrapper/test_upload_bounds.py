"""An S3 that does not answer never holds an invocation past its remaining time.

Before, one call with 600 ms left took 6 s against an endpoint that accepted
no request, and refused connections cost every call its whole budget.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coverage_wrapper import coverage_handler
from coverage_wrapper.session import get_session
from coverage_wrapper.uploader import CONNECTION_ERROR_PAUSE, S3Uploader, UploadFailed
from tests.wrapper.conftest import HeldContext, WatchedClock, make_clients, write_module


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP port whose connections are taken by the kernel and never answered."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_silent_endpoint_holds_the_call_no_longer_than_its_remaining_time(
    task_root: Path, monkeypatch: pytest.MonkeyPatch, silent_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", silent_endpoint)
    monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "30")
    write_module(
        task_root,
        "app.py",
        "def handler(event, context):\n    if event['n'] == 1:\n        return 1\n    return 2\n",
    )
    import app  # type: ignore[import-not-found]

    handler = coverage_handler(app.handler)
    session = get_session()
    make_clients(session.uploader(), 1.0)
    # The first call meets the silence. Its remaining time is held at 1.5 s,
    # so it has a budget of 1 s however long a loaded machine took to reach
    # the flush (with a clock that ran on, a slow first call once had no time
    # left and never tried).
    assert handler({"n": 1}, HeldContext("req-1", remaining_ms=1500)) == 1
    assert session.status.last_flush is not None
    assert session.status.last_flush.outcome == "failed"
    # A read that timed out pauses uploads for a second (a transient failure):
    # as if that pause had run out, so that the second call tries again.
    assert session.upload_pause_reason is not None
    assert "ReadTimeoutError" in session.upload_pause_reason
    session.uploader().paused_until = 0.0
    started = time.monotonic()
    assert handler({"n": 2}, HeldContext("req-2", remaining_ms=600)) == 2
    elapsed = time.monotonic() - started
    # Within what the invocation had left (its budget is 0.1 s: that minus the
    # margin); botocore alone would wait two seconds for a "100 Continue" first.
    assert elapsed < 0.6, elapsed
    last = session.status.last_flush
    assert last is not None
    assert last.outcome == "failed"
    assert "ReadTimeoutError" in (last.error or "")


def test_a_refused_connection_pauses_uploads_for_a_growing_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        clock = WatchedClock()
        uploader = S3Uploader("bucket", timeout=5, region="eu-west-1", clock=clock)
        pauses: list[float] = []
        for _ in range(3):
            uploader.paused_until = 0.0  # as if the pause had run out
            with pytest.raises(UploadFailed) as failed:
                uploader.put("k", b"x", {}, deadline=clock() + 5)
            failed_at = clock.last  # when the pause was set
            assert failed.value.kind == "connection"
            assert failed.value.attempts == 1  # not retried
            pauses.append(uploader.paused_until - failed_at)
    # Counted from the failure (the first attempt also creates the client).
    assert pauses == pytest.approx(
        [CONNECTION_ERROR_PAUSE, 2 * CONNECTION_ERROR_PAUSE, 4 * CONNECTION_ERROR_PAUSE], abs=1e-9
    )
