"""When a measured invocation writes a snapshot: ``COVERAGE_FLUSH_POLICY``.

- ``invocation``: after every measured invocation.
- ``interval``: after an invocation when ``COVERAGE_FLUSH_INTERVAL`` seconds
  have passed since the last flush (or since the process started).
- ``shutdown``: only when the sandbox shuts down (needs the layer's
  extension; without it, ``interval``).
- ``adaptive``: after each of a container's first
  :data:`ADAPTIVE_FIRST_INVOCATIONS` measured invocations (a short test run
  sees its data at once), then as ``interval``; and, while an invocation
  runs, shortly before it would time out (:class:`TimeoutGuard`).

Every policy also flushes at shutdown when the layer's extension runs (the
runtime gets SIGTERM then). Whatever the policy, a flush writes a snapshot
only when something new was measured since the last one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from coverage_wrapper.constants import (
    DEFAULT_FLUSH_POLICY,
    DEFAULT_FLUSH_POLICY_WITH_EXTENSION,
    FlushPolicy,
)

#: ``adaptive`` flushes after each of this many first measured invocations.
ADAPTIVE_FIRST_INVOCATIONS: Final = 3
#: ``adaptive`` saves a snapshot this many seconds before an invocation's deadline.
TIMEOUT_GUARD_LEAD: Final = 1.0


def effective_policy(configured: FlushPolicy | None, extension_present: bool) -> FlushPolicy:
    """The policy in force: the configured one, else the default for this sandbox.

    ``shutdown`` needs the extension (Lambda sends SIGTERM to the runtime only
    when an extension is registered); without it, it works as ``interval``.
    """
    if configured == "shutdown" and not extension_present:
        return "interval"
    if configured is not None:
        return configured
    return DEFAULT_FLUSH_POLICY_WITH_EXTENSION if extension_present else DEFAULT_FLUSH_POLICY


class FlushSchedule:
    """Decides, after each measured invocation, whether a flush is due."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = clock()

    def due(self, policy: FlushPolicy, measured_invocations: int) -> bool:
        """Whether the invocation that just ended should flush under ``policy``."""
        if policy == "invocation":
            return True
        if policy == "shutdown":
            return False
        if policy == "adaptive" and measured_invocations <= ADAPTIVE_FIRST_INVOCATIONS:
            return True
        return self._clock() - self._last >= self.interval

    def flushed(self) -> None:
        """Start a new interval (a flush happened, whether or not it wrote anything)."""
        self._last = self._clock()


class TimeoutGuard:
    """Runs ``action`` shortly before a running invocation would time out.

    One thread per process, started on first use, waits for the deadline of
    the invocation in progress. Arming and disarming take a lock and do not
    wake it: it sleeps until the deadline it last saw and then looks again,
    so it wakes about once per function timeout, not once per invocation
    (a wake-up per call would cost the caller a thread switch). Between
    invocations Lambda freezes the process, so it only acts while an
    invocation runs. ``clock`` tells the time in seconds (a test holds its own).
    """

    def __init__(
        self,
        action: Callable[[], None],
        lead: float = TIMEOUT_GUARD_LEAD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._action = action
        self._lead = lead
        self._clock = clock
        self._deadline: float | None = None
        #: When the thread will look again (None: it waits to be woken).
        self._wake_at: float | None = None
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, remaining_seconds: float) -> None:
        """Act ``lead`` seconds before ``remaining_seconds`` from now, unless disarmed."""
        with self._changed:
            self._deadline = self._clock() + remaining_seconds - self._lead
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="coverage-timeout-guard", daemon=True
                )
                self._thread.start()
            elif self._wake_at is None or self._wake_at > self._deadline:
                self._changed.notify()

    def disarm(self) -> None:
        """The invocation ended in time."""
        with self._changed:
            self._deadline = None

    def _watch(self) -> None:
        while True:
            with self._changed:
                while self._deadline is None or self._clock() < self._deadline:
                    self._wake_at = self._deadline
                    timeout = None if self._deadline is None else self._deadline - self._clock()
                    self._changed.wait(timeout)
                self._deadline = self._wake_at = None
            self._action()
