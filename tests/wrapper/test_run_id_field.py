"""The run id taken from each invocation's event (``COVERAGE_RUN_ID_FIELD``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler
from coverage_wrapper.attribution import MAX_RUN_ID_LENGTH, run_id_in_event, run_id_problem
from coverage_wrapper.keys import KeyTemplate
from coverage_wrapper.session import current_session
from coverage_wrapper.spool import Spool
from tests.wrapper.conftest import (
    CORES,
    FUNCTION_NAME,
    lambda_context,
    uploads,
    use_core,
    write_module,
)

TEMPLATE = "{prefix}{function}/{run_id}/{container}-{pid}-{seq}.coverage"

RUNS = """\
def handler(event, context):
    path = event.get("path")
    if path == "a":
        return "a"
    if path == "b":
        return "b"
    return "other"
"""
# Run A takes paths a and b; run B takes path a (exactly A's first lines: new
# under B's context although nothing new in the file) and the fall-through.
A_LINES = {2, 3, 4, 5, 6}
B_LINES = {2, 3, 4, 5, 7}


def rest_api_event(run: str, path: str) -> dict[str, Any]:
    """An API Gateway REST API event: header names as the client wrote them."""
    return {
        "headers": {"X-Test-Run": run},
        "multiValueHeaders": {"X-Test-Run": [run]},
        "path": path,
    }


def http_api_event(run: str, path: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event: header names lower-cased."""
    return {"headers": {"x-test-run": run}, "path": path}


def lines_of_run(s3: Any, bucket: str, run_id: str) -> set[int]:
    """What the combiner reports for ``run_id`` alone, from the bucket."""
    # The combiner needs Python 3.11+: on 3.10 the wrapper's side is checked alone.
    combiner = pytest.importorskip("coverage_combiner.combine")
    CombineOptions, combine = combiner.CombineOptions, combiner.combine
    options = CombineOptions(key_template=TEMPLATE, run_id=run_id, processes=1)
    result = combine([f"s3://{bucket}/coverage/"], options, s3=s3)
    lines: set[int] = result.merged.lines_by_file()["runs.py"]
    return lines


@pytest.fixture
def runs_handler(task_root: Path, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COVERAGE_S3_KEY_TEMPLATE", TEMPLATE)
    monkeypatch.setenv("COVERAGE_RUN_ID_FIELD", "headers.x-test-run")
    write_module(task_root, "runs.py", RUNS)
    import runs  # type: ignore[import-not-found]

    return coverage_handler(runs.handler)


@pytest.mark.parametrize("policy", ["invocation", "interval"])
@pytest.mark.parametrize("core", CORES)
def test_two_runs_through_one_container_are_reported_apart(
    runs_handler: Any,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    core: str,
    policy: str,
) -> None:
    use_core(monkeypatch, core)
    # ``interval`` with an hour's interval flushes only when the run changes:
    # the old run's data must then be flushed, under its key, before the switch.
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", policy)
    monkeypatch.setenv("COVERAGE_FLUSH_INTERVAL", "3600")
    calls = [
        (rest_api_event("A", "a"), "a"),
        (http_api_event("B", "a"), "a"),
        (http_api_event("B", "c"), "other"),
        # Back to A: its later lines join A's report.
        (rest_api_event("A", "b"), "b"),
    ]
    for number, (event, expected) in enumerate(calls):
        assert runs_handler(event, lambda_context(f"r{number}")) == expected
    session = current_session()
    assert session is not None
    session.flush()  # what the shutdown would do

    template = KeyTemplate.parse_template(TEMPLATE)
    found = sorted(uploads(s3, bucket, tmp_path), key=lambda u: u.key[-15:])
    keyed = [(template.parse(u.key), u.metadata.get("run-id")) for u in found]
    # In the order written (by sequence number): each snapshot's key and metadata name its run.
    assert [(key.run_id if key else None, meta) for key, meta in keyed] == [
        ("A", "A"),
        ("B", "B"),
        *([("B", "B")] if policy == "invocation" else []),
        ("A", "A"),
    ]
    static = f"{FUNCTION_NAME}@$LATEST"
    assert found[-1].contexts == {f"{static}|invocation;run=A", f"{static}|invocation;run=B"}
    assert lines_of_run(s3, bucket, "A") == A_LINES
    assert lines_of_run(s3, bucket, "B") == B_LINES


def test_without_the_field_the_environment_run_id_holds(
    runs_handler: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_RUN_ID", "nightly")
    assert runs_handler({"path": "a"}, lambda_context("r1")) == "a"
    assert runs_handler({"headers": None, "path": "b"}, lambda_context("r2")) == "b"
    assert runs_handler(http_api_event("ci-7", "c"), lambda_context("r3")) == "other"
    assert lines_of_run(s3, bucket, "nightly") == A_LINES
    assert lines_of_run(s3, bucket, "ci-7") == {2, 3, 5, 7}


def test_a_bad_run_id_is_logged_once_and_treated_as_none(
    runs_handler: Any,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COVERAGE_RUN_ID", "nightly")
    capsys.readouterr()
    assert runs_handler(http_api_event("run 1/x", "a"), lambda_context("r1")) == "a"
    assert runs_handler(http_api_event("x" * 200, "b"), lambda_context("r2")) == "b"
    warnings = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["level"] == "WARNING"
    ]
    assert [w["message"] for w in warnings] == [
        "The run id at COVERAGE_RUN_ID_FIELD='headers.x-test-run' has the characters ' ' '/'; "
        "a run id uses only A-Z a-z 0-9 . _ = + -; such invocations are recorded under "
        "COVERAGE_RUN_ID (or no run id). Send a run id such as 'ci-1234' (only this first bad "
        "value is logged)"
    ]
    assert lines_of_run(s3, bucket, "nightly") == A_LINES
    from coverage_wrapper import health_check_handler

    assert any("COVERAGE_RUN_ID_FIELD" in p for p in health_check_handler()["problems"])


def test_field_lookup_in_api_gateway_events() -> None:
    path = ("headers", "x-test-run")
    assert run_id_in_event(rest_api_event("A", "a"), path) == "A"
    assert run_id_in_event(http_api_event("B", "a"), path) == "B"
    # The exact name wins over one that differs only in case.
    assert run_id_in_event({"headers": {"X-Test-Run": "1", "x-test-run": "2"}}, path) == "2"
    assert run_id_in_event(rest_api_event("A", "a"), ("multiValueHeaders", "x-test-run")) == "A"
    assert run_id_in_event({"Records": [{"run": "r7"}]}, ("Records", "0", "run")) == "r7"
    assert run_id_in_event({"Records": []}, ("Records", "0", "run")) is None
    assert run_id_in_event({"headers": None}, path) is None
    assert run_id_in_event({"headers": "text"}, path) is None
    assert run_id_in_event(["not", "a", "mapping"], path) is None
    assert run_id_in_event(None, path) is None
    assert run_id_in_event({"run": 42}, ("run",)) == 42


def test_run_id_rules_are_the_key_segment_rules() -> None:
    assert run_id_problem("ci-1234.2_x=y+z") is None
    assert run_id_problem(42) is None
    assert run_id_problem("x" * MAX_RUN_ID_LENGTH) is None
    assert run_id_problem("x" * (MAX_RUN_ID_LENGTH + 1)) == "has 129 characters, more than 128"
    assert run_id_problem("$LATEST") == (
        "has the characters '$'; a run id uses only A-Z a-z 0-9 . _ = + -"
    )
    assert run_id_problem(".hidden") == (
        "starts or ends with '.'; a run id has no '.' at either end"
    )
    assert run_id_problem("") == "is empty"
    assert run_id_problem(True) == "is a bool, not text"
    assert run_id_problem({"a": 1}) == "is a dict, not text"


def test_a_newer_snapshot_supersedes_only_its_own_runs(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_files=10)
    source = tmp_path / "data"
    source.write_bytes(b"x")

    def add(seq: int, run: str | None) -> None:
        metadata = {} if run is None else {"run-id": run}
        spool.add(source, name=f"p-{seq}", key=f"k{seq}", metadata=metadata, seq=seq)

    add(1, None)
    add(2, "A")
    add(3, "A")
    add(4, "B")
    newest = spool.entries()[-1]
    assert spool.remove_superseded(newest) == 0
    assert spool.remove_superseded(spool.entries()[2]) == 1
    assert [e.key for e in spool.entries()] == ["k1", "k3", "k4"]
