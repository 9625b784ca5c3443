"""Whatever goes wrong around it, the wrapped handler answers as the unwrapped one.

For each fault and each of the three ways in, the return value and the
exception (type, message, where it was raised) equal those of the handler
called without the wrapper; and the fault is visible where it should be (the
health check, the last flush, the requests S3 saw).
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coverage
import pytest

from coverage_wrapper import CoverageContext, coverage_handler, health_check_handler
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import lambda_context, uploads, write_module
from tests.wrapper.s3_servers import (
    ACCESS_DENIED,
    INTERNAL_ERROR,
    SLOW_DOWN,
    FaultProxy,
    free_port,
)
from tests.wrapper.sample_functions import FAULTY

EVENTS: list[dict[str, Any]] = [{"n": 1}, {"fail": 7}, {"n": 2}]


@dataclass(frozen=True)
class Outcome:
    """What a call produced, in the terms the caller of a Lambda function sees."""

    value: Any = None
    error_type: type[BaseException] | None = None
    error_args: tuple[Any, ...] = ()
    origin: tuple[str, int, str] | None = None


def call(handler: Callable[[Any, Any], Any], event: dict[str, Any]) -> Outcome:
    """Call a handler and describe its result or exception."""
    try:
        return Outcome(value=handler(event, lambda_context()))
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(
            error_type=type(exc),
            error_args=exc.args,
            origin=(last.filename, last.lineno or 0, last.name),
        )


def build(mode: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, Any], Any]:
    """The handler of ``faulty.py`` wrapped in one of the three ways."""
    import faulty  # type: ignore[import-not-found]

    if mode == "decorator":
        return coverage_handler(faulty.handler)  # type: ignore[no-any-return]
    if mode == "context":

        def handler(event: Any, context: Any) -> Any:
            with CoverageContext(context=context):
                return faulty.handler(event, context)

        return handler
    monkeypatch.setenv("COVERAGE_ORIGINAL_HANDLER", "faulty.handler")
    sys.modules.pop("coverage_wrapper.handler", None)
    return importlib.import_module("coverage_wrapper.handler").handler  # type: ignore[no-any-return]


@dataclass
class FaultSetup:
    """A fault in place, and what must be true after the calls because of it."""

    expect_flush: str | None  # the last flush's outcome, or None when nothing flushed
    expect_degraded: bool
    check: Callable[[], None] = lambda: None


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_url) as running:
        yield running


@contextlib.contextmanager
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs filled to the last byte (skips where mounting is not allowed)."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), (mount_point / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


FAULTS = [
    "s3_unreachable",
    "s3_internal_errors",
    "s3_throttling",
    "access_denied",
    "no_such_bucket",
    "no_credentials",
    "tmp_read_only",
    "tmp_full",
    "coverage_fails_to_start",
    "coverage_already_running",
]


@pytest.fixture
def fault(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    proxy: FaultProxy,
    s3: Any,
    bucket_name: str,
) -> Iterator[FaultSetup]:
    name = request.param
    create_bucket = name != "no_such_bucket"
    if create_bucket:
        s3.create_bucket(
            Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )

    def no_uploads() -> None:
        if create_bucket:
            assert uploads(s3, bucket_name, tmp_path) == []

    def last_error(fragment: str) -> Callable[[], None]:
        def check() -> None:
            session = current_session()
            assert session is not None
            last = session.status.last_flush
            assert last is not None
            assert fragment in (last.error or "")
            no_uploads()

        return check

    if name == "s3_unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "1")
        # The first flush fails on the connection; later ones do not even try.
        yield FaultSetup(
            "spooled", True, last_error("uploads paused after: EndpointConnectionError")
        )
    elif name == "s3_internal_errors":
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "1")
        proxy.inject(*[INTERNAL_ERROR] * 200)

        def retried_then_paused() -> None:
            last_error("uploads paused after: S3 answered InternalError")()
            # Tried (and retried while the first flush's budget lasted, see
            # test_upload_classes); then uploads pause, so the later flushes
            # of the outage do not pay for it again.
            puts = proxy.log.puts()
            assert {status for _, _, status in puts} == {500}
            session = current_session()
            assert session is not None
            assert session.status.failed_uploads == 1

        yield FaultSetup("spooled", True, retried_then_paused)
    elif name == "s3_throttling":
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        proxy.inject(SLOW_DOWN, SLOW_DOWN)

        def recovered() -> None:
            statuses = [status for _, _, status in proxy.log.puts()]
            assert statuses[:3] == [503, 503, 200]
            # One per flush that measured something new: the third event replays the first.
            assert len(uploads(s3, bucket_name, tmp_path)) == len(EVENTS) - 1

        yield FaultSetup("uploaded", False, recovered)
    elif name == "access_denied":
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        proxy.inject(*[ACCESS_DENIED] * 50)

        def not_retried() -> None:
            last_error("uploads paused after")()
            # One attempt, no retry; later flushes do not even try.
            assert [status for _, _, status in proxy.log.puts()] == [403]

        yield FaultSetup("spooled", True, not_retried)
    elif name == "no_such_bucket":

        def reported() -> None:
            last_error("uploads paused after: S3 answered NoSuchBucket")()

        yield FaultSetup("spooled", True, reported)
    elif name == "no_credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        yield FaultSetup("spooled", True, last_error("NoCredentialsError"))
    elif name == "tmp_read_only":
        monkeypatch.setenv("COVERAGE_SPOOL_DIR", "/proc/lambda-coverage-test")

        def unwritable() -> None:
            health = health_check_handler()
            assert any(
                "COVERAGE_SPOOL_DIR='/proc/lambda-coverage-test' is not a writable folder" in p
                for p in health["problems"]
            ), health
            no_uploads()

        yield FaultSetup(None, True, unwritable)
    elif name == "tmp_full":
        with full_tmpfs(tmp_path) as full:
            monkeypatch.setenv("COVERAGE_SPOOL_DIR", str(full / "spool"))
            yield FaultSetup("failed", True, last_error("saving data"))
    elif name == "coverage_fails_to_start":
        rc = tmp_path / "broken.rc"
        rc.write_text("[run]\nbranch = maybe\n")
        monkeypatch.setenv("COVERAGE_WRAPPER_CONFIG_FILE", str(rc))

        def failed_to_start() -> None:
            session = current_session()
            assert session is not None
            assert session.measurement is not None
            assert session.measurement.state == "failed"
            assert "Coverage could not start" in (session.measurement.failure or "")
            no_uploads()

        yield FaultSetup(None, True, failed_to_start)
    elif name == "coverage_already_running":
        outer = coverage.Coverage(data_file=None, branch=True, config_file=False)
        outer.start()
        try:
            yield FaultSetup(None, True, no_uploads)
            assert coverage.Coverage.current() is outer
        finally:
            outer.stop()
        faulty_file = str(tmp_path / "task" / "faulty.py")
        # The measurement that was there first saw the handler run, undisturbed.
        assert outer.get_data().lines(faulty_file)
    else:  # pragma: no cover - the list above is the parametrisation
        raise AssertionError(name)


@pytest.mark.parametrize("mode", ["decorator", "context", "zero_code"])
@pytest.mark.parametrize("fault", FAULTS, indirect=True)
def test_outcome_is_unchanged_under_fault(
    task_root: Path, monkeypatch: pytest.MonkeyPatch, fault: FaultSetup, mode: str
) -> None:
    write_module(task_root, "faulty.py", FAULTY)
    import faulty

    expected = [call(faulty.handler, event) for event in EVENTS]
    wrapped = build(mode, monkeypatch)
    actual = [call(wrapped, event) for event in EVENTS]

    assert actual == expected
    assert expected[1].error_type is ValueError
    assert expected[1].origin is not None
    assert expected[1].origin[0] == str(task_root / "faulty.py")
    if coverage.Coverage.current() is None:
        assert sys.gettrace() is None

    session = current_session()
    assert session is not None
    last = session.status.last_flush
    assert (last.outcome if last else None) == fault.expect_flush
    health = health_check_handler()
    assert (health["status"] == "degraded") is fault.expect_degraded, health
    fault.check()
