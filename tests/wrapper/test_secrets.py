"""No credential and no secret-looking value ever leaves the wrapper in its output.

Canaries are planted where a careless wrapper would pick them up: the AWS
credentials, a database password and an access-key-shaped value in the
environment, a token in the event and in the handler's exception. Then the
wrapper runs its healthy path and each logged failure path (an upload refused
by S3, a connection refused, a configuration error, an access denial), at
debug level, and everything it says (stdout, stderr, log records, the health
check) is searched for every canary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from coverage_wrapper import coverage_handler, get_coverage_status, health_check_handler
from tests.wrapper.conftest import lambda_context, write_module
from tests.wrapper.s3_servers import ACCESS_DENIED, FaultProxy, free_port

#: Environment variables holding canaries, and their values.
ENVIRONMENT_CANARIES: Final = {
    "AWS_SECRET_ACCESS_KEY": "canary-secret-key-wJalrXUtnFEMI",
    "AWS_SESSION_TOKEN": "canary-session-token-IQoJb3JpZ2luX2Vj",
    "DB_PASSWORD": "canary-db-password-hunter2",
    "INTEGRATION_SETTING": "AKIACANARY0123456789",
}
EVENT_TOKEN: Final = "canary-event-token-ghp_16C7e42F292c6912E7710c838347Ae178B4a"
EXCEPTION_TOKEN: Final = "canary-exception-token-xoxb-2637"
CANARIES: Final = (*ENVIRONMENT_CANARIES.values(), EVENT_TOKEN, EXCEPTION_TOKEN)
#: Variable names that would show an environment dump, even with harmless values.
NAMES: Final = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DB_PASSWORD", "AWS_ACCESS_KEY_ID")

HANDLER: Final = f"""\
def handler(event, context):
    if event.get("fail"):
        raise PermissionError("login refused for " + event["token"] + " {EXCEPTION_TOKEN}")
    return {{"ok": len(event["token"])}}
"""


class Records(logging.Handler):
    """Every log record of every logger, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        self.lines.append(f"{record.name} {record.getMessage()} {fields}")


@contextlib.contextmanager
def refused_endpoint() -> Iterator[str]:
    """An endpoint on 127.0.0.1 where nothing listens."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    yield f"http://127.0.0.1:{port}"


def _healthy(monkeypatch: pytest.MonkeyPatch, bucket: str, moto_url: str) -> Iterator[str]:
    yield "uploaded"


def _missing_bucket(monkeypatch: pytest.MonkeyPatch, bucket: str, moto_url: str) -> Iterator[str]:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", f"{bucket}-missing")
    yield "NoSuchBucket"


def _refused(monkeypatch: pytest.MonkeyPatch, bucket: str, moto_url: str) -> Iterator[str]:
    with refused_endpoint() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        yield "connection"


def _access_denied(monkeypatch: pytest.MonkeyPatch, bucket: str, moto_url: str) -> Iterator[str]:
    with FaultProxy(moto_url) as proxy:
        proxy.inject(*[ACCESS_DENIED] * 20)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        yield "AccessDenied"


def _config_error(monkeypatch: pytest.MonkeyPatch, bucket: str, moto_url: str) -> Iterator[str]:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "sometimes")
    yield "COVERAGE_FLUSH_POLICY"


Scenario = Callable[[pytest.MonkeyPatch, str, str], Iterator[str]]
SCENARIOS: Final[dict[str, Scenario]] = {
    "healthy": _healthy,
    "missing-bucket": _missing_bucket,
    "refused-connection": _refused,
    "access-denied": _access_denied,
    "config-error": _config_error,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_canary_in_any_output(
    scenario: str,
    task_root: Path,
    bucket: str,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name, value in ENVIRONMENT_CANARIES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COVERAGE_LOG_LEVEL", "DEBUG")
    records = Records()
    loggers = [logging.getLogger(), logging.getLogger("coverage_wrapper")]
    for logger in loggers:
        logger.addHandler(records)
    write_module(task_root, "login.py", HANDLER)
    import login  # type: ignore[import-not-found]

    try:
        with contextlib.contextmanager(SCENARIOS[scenario])(monkeypatch, bucket, moto_url) as sign:
            handler = coverage_handler(login.handler)
            assert handler({"token": EVENT_TOKEN}, lambda_context()) == {"ok": len(EVENT_TOKEN)}
            with pytest.raises(PermissionError, match=EXCEPTION_TOKEN):
                handler({"token": EVENT_TOKEN, "fail": True}, lambda_context())
            health = health_check_handler(probe_s3=True)
            status = get_coverage_status()
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    out, err = capfd.readouterr()
    said = {
        "stdout": out,
        "stderr": err,
        "log records": "\n".join(records.lines),
        "health": json.dumps(health),
        "status": json.dumps(status),
    }
    # The scenario did happen, and was said: the search below is not over silence.
    assert sign in said["stdout"] + said["health"], said
    if scenario == "healthy":
        assert health["status"] == "healthy", health
    else:
        assert health["status"] == "degraded", health
        assert any(json.loads(line)["level"] != "DEBUG" for line in out.splitlines()), out
    for where, text in said.items():
        for canary in CANARIES:
            assert canary not in text, (scenario, where, canary)
        for name in NAMES:
            assert name not in text, (scenario, where, name)
