"""Flush policies and delta snapshots, in the process (no extension: the flush uploads itself)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import CoverageContext, coverage_handler
from coverage_wrapper.constants import FlushPolicy
from coverage_wrapper.flush_policy import (
    ADAPTIVE_FIRST_INVOCATIONS,
    FlushSchedule,
    TimeoutGuard,
    effective_policy,
)
from coverage_wrapper.health_check import health_check_handler
from coverage_wrapper.session import current_session, get_session
from tests.wrapper.conftest import lambda_context, union_lines, uploads
from tests.wrapper.sample_functions import ORDERS_BIG_ORDER_LINES, ORDERS_SMALL_ORDER_LINES


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scheduled_by_hand() -> Clock:
    """The clock of the process's flush schedule, now one the test moves by hand.

    The session is created as the first call would create it; only its
    schedule's clock is the test's, so "an interval has passed" does not
    depend on how fast a loaded machine runs the calls.
    """
    session = get_session()
    clock = Clock()
    session.schedule = FlushSchedule(session.config.flush_interval, clock)
    return clock


def flushes(policy: FlushPolicy, gaps: list[float], interval: float = 60.0) -> list[bool]:
    """Which of a series of invocations (``gaps`` seconds apart) flush under ``policy``."""
    clock = Clock()
    schedule = FlushSchedule(interval, clock)
    due = []
    for count, gap in enumerate(gaps, start=1):
        clock.now += gap
        flush = schedule.due(policy, count)
        if flush:
            schedule.flushed()
        due.append(flush)
    return due


def test_invocation_flushes_after_every_invocation() -> None:
    assert flushes("invocation", [0.1] * 5) == [True] * 5


def test_shutdown_never_flushes_after_an_invocation() -> None:
    assert flushes("shutdown", [100.0] * 3) == [False] * 3


def test_interval_flushes_at_most_once_per_interval() -> None:
    assert flushes("interval", [1, 30, 29, 1, 58, 61], interval=60) == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def test_adaptive_flushes_the_first_invocations_then_per_interval() -> None:
    first = [True] * ADAPTIVE_FIRST_INVOCATIONS
    assert flushes("adaptive", [1.0] * ADAPTIVE_FIRST_INVOCATIONS + [1, 58, 1, 30]) == [
        *first,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("configured", "extension", "expected"),
    [
        (None, True, "adaptive"),
        (None, False, "invocation"),
        ("invocation", True, "invocation"),
        ("interval", False, "interval"),
        ("shutdown", True, "shutdown"),
        # Lambda signals a shutdown only when an extension runs.
        ("shutdown", False, "interval"),
    ],
)
def test_the_policy_in_force(
    configured: FlushPolicy | None, extension: bool, expected: FlushPolicy
) -> None:
    assert effective_policy(configured, extension) == expected


def test_a_snapshot_is_written_only_when_something_new_ran(
    orders: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    handler = coverage_handler(orders.handler)
    for _ in range(3):
        handler({"prices": [10, 20]}, lambda_context())
    assert len(uploads(s3, bucket, tmp_path)) == 1
    handler({"prices": [100, 20]}, lambda_context())
    handler({"prices": [100, 20]}, lambda_context())
    found = uploads(s3, bucket, tmp_path)
    assert len(found) == 2
    assert union_lines(found) == {"orders.py": ORDERS_SMALL_ORDER_LINES | ORDERS_BIG_ORDER_LINES}
    session = current_session()
    assert session is not None
    assert session.status.measured_invocations == 5
    assert session.status.uploaded_files == 2


def test_interval_without_the_extension_uploads_in_the_call_once_due(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "interval")
    monkeypatch.setenv("COVERAGE_FLUSH_INTERVAL", "30")
    clock = scheduled_by_hand()
    handler = coverage_handler(orders.handler)
    handler({"prices": [10, 20]}, lambda_context())
    clock.now += 29.9
    handler({"prices": [10, 20]}, lambda_context())
    assert uploads(s3, bucket, tmp_path) == []
    clock.now += 0.1
    handler({"prices": [100, 20]}, lambda_context())
    assert union_lines(uploads(s3, bucket, tmp_path)) == {
        "orders.py": ORDERS_SMALL_ORDER_LINES | ORDERS_BIG_ORDER_LINES
    }


def test_shutdown_without_the_extension_is_a_problem_and_works_as_interval(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "shutdown")
    handler = coverage_handler(orders.handler)
    handler({"prices": [10, 20]}, lambda_context())
    health = health_check_handler()
    assert health["status"] == "degraded"
    assert any("COVERAGE_FLUSH_POLICY='shutdown' needs" in p for p in health["problems"])
    assert health["configuration"]["flush_policy"] == "interval"
    assert health["configuration"]["flush_interval"] == 60.0
    session = current_session()
    assert session is not None
    assert session.flush_policy == "interval"


class WatchedClock(Clock):
    """A clock the test moves by hand, which tells when it has been read since the last move."""

    def __init__(self) -> None:
        super().__init__()
        self._reads = 0
        self._read = threading.Condition()

    def __call__(self) -> float:
        with self._read:
            self._reads += 1
            self._read.notify_all()
            return self.now

    def move_to(self, now: float) -> None:
        with self._read:
            self.now, self._reads = now, 0

    def read_twice(self) -> bool:
        """Wait until the clock was read twice since the last move: the guard has looked at
        the new time at least once (it reads it to decide, and again to wait)."""
        with self._read:
            return self._read.wait_for(lambda: self._reads >= 2, timeout=30)


def test_the_timeout_guard_acts_before_the_deadline_unless_disarmed() -> None:
    clock = WatchedClock()
    acted: list[float] = []
    done = threading.Semaphore(0)

    def action() -> None:
        acted.append(clock.now)
        done.release()

    guard = TimeoutGuard(action, lead=0.2, clock=clock)
    start = clock.now
    guard.arm(0.35)  # acts at start + 0.15
    clock.move_to(start + 0.149)
    assert clock.read_twice()
    assert acted == []  # it looked, and it is not time yet
    clock.move_to(start + 0.15)
    assert done.acquire(timeout=30)
    assert acted == [start + 0.15]
    first = acted[0]

    # Disarmed in time: a deadline that passes does nothing.
    guard.arm(0.4)
    guard.disarm()
    clock.move_to(start + 1.0)
    # Armed again for a later deadline while it sleeps towards an earlier one:
    # it looks again when it wakes and acts at the later deadline only.
    start = clock.now
    guard.arm(0.3)
    guard.disarm()
    guard.arm(0.6)  # acts at start + 0.4, not at start + 0.1
    clock.move_to(start + 0.39)
    assert clock.read_twice()
    assert acted == [first]
    clock.move_to(start + 0.4)
    assert done.acquire(timeout=30)
    assert acted == [first, start + 0.4]


def test_a_context_manager_block_flushes_by_the_policy(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "interval")
    monkeypatch.setenv("COVERAGE_FLUSH_INTERVAL", "30")
    clock = scheduled_by_hand()
    for prices in ([10, 20], [100, 20]):
        with CoverageContext(context=lambda_context()):
            orders.handler({"prices": prices}, None)
        clock.now += 14.9
    assert uploads(s3, bucket, tmp_path) == []
    clock.now += 0.2
    with CoverageContext(context=lambda_context()):
        orders.handler({"prices": [1]}, None)
    assert len(uploads(s3, bucket, tmp_path)) == 1
    session = current_session()
    assert session is not None
    assert session.status.measured_blocks == 3


def test_adaptive_saves_a_snapshot_while_an_invocation_runs_into_its_timeout(
    orders: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "adaptive")
    pending = tmp_path / "spool" / "pending"
    seen: list[int] = []

    def slow(event: Any, context: Any) -> Any:
        answer = orders.handler(event, context)
        # The guard acts one second before the deadline, in its own thread:
        # the invocation runs on until the snapshot is there.
        give_up = time.monotonic() + 30
        while not list(pending.glob("*.coverage")) and time.monotonic() < give_up:
            time.sleep(0.01)
        seen.append(len(list(pending.glob("*.coverage"))))
        return answer

    coverage_handler(slow)({"prices": [10, 20]}, lambda_context(remaining_ms=1400))
    assert seen == [1]
    names = [t.name for t in threading.enumerate()]
    assert "coverage-timeout-guard" in names
