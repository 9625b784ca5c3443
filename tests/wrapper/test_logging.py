"""Logs: JSON lines on our own logger, the request id on each, quiet when all is well."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler
from tests.wrapper.conftest import lambda_context, write_module
from tests.wrapper.sample_functions import ORDERS


@pytest.fixture
def handler(task_root: Path, bucket: str) -> Any:
    write_module(task_root, "orders.py", ORDERS)
    import orders  # type: ignore[import-not-found]

    return coverage_handler(orders.handler)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_warm_invocation_logs_at_most_one_line_at_info(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler({"prices": [1]}, lambda_context("cold"))
    capsys.readouterr()
    # A new path (the discount): a snapshot is written only when something new ran.
    handler({"prices": [100, 20]}, lambda_context("warm-request-id"))
    lines = json_lines(capsys.readouterr().out)
    assert len(lines) == 1
    (line,) = lines
    assert line["level"] == "INFO"
    assert line["logger"] == "coverage_wrapper"
    assert line["message"] == "Coverage file uploaded successfully"
    assert line["request_id"] == "warm-request-id"
    assert line["s3_key"].endswith("-000002.coverage")
    assert line["file_size"] > 0
    assert line["upload_time_ms"] >= 0
    assert line["timestamp"].endswith("Z")


def test_warning_level_silences_success(
    task_root: Path,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COVERAGE_LOG_LEVEL", "WARNING")
    write_module(task_root, "orders.py", ORDERS)
    import orders

    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    assert capsys.readouterr().out == ""


def test_the_root_logger_is_left_alone(handler: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    level_before = root.level
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    collector = Collect()
    root.addHandler(collector)
    try:
        handler({"prices": [1]}, lambda_context())
    finally:
        root.removeHandler(collector)
    assert list(root.handlers) == handlers_before
    assert root.level == level_before
    # Our lines are not duplicated into the function's own logging setup.
    assert [r for r in seen if r.name.startswith("coverage_wrapper")] == []
    assert json_lines(capsys.readouterr().out)[0]["message"].startswith("Coverage file uploaded")


def test_names_from_data_reach_the_log_as_escaped_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_wrapper import logs

    hostile = "fn\x1b]0;owned\x07\x1b[2K\r\n\x9b31m\u202egnp.exe<img src=x>"
    monkeypatch.setattr(logs.logger, "handlers", [])
    logs.configure("INFO")
    logs.log(logging.WARNING, f"cannot upload for {hostile}", function=hostile, s3_key=hostile)
    (line, end) = capsys.readouterr().out.split("\n")
    # One line of printable ASCII: JSON escapes every control and non-ASCII character.
    assert end == ""
    assert all(" " <= character <= "~" for character in line), line
    record = json.loads(line)
    assert record["message"] == f"cannot upload for {hostile}"
    assert record["function"] == record["s3_key"] == hostile
