"""The load test's driver: every scenario sent many times, concurrently, each answer checked."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from test_stack.invocations import InvokeResult
from test_stack.scenarios import Scenario

Invoker = Callable[[Scenario], InvokeResult]


@dataclass(frozen=True)
class Outcome:
    """One invoke of one scenario: the answer, the caller's latency, what was wrong."""

    scenario: Scenario
    result: InvokeResult
    latency_ms: float
    problem: str | None


class Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._lock = threading.Lock()

    def advance(self, failed: bool) -> None:
        """Count one finished invoke and redraw."""
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            if self.enabled:
                width = 30
                filled = width * self.done // max(1, self.total)
                bar = "#" * filled + "." * (width - filled)
                self.stream.write(
                    f"\r  [{bar}] {self.done}/{self.total} invokes, {self.failed} failed"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()


def drive(
    invoke: Invoker,
    scenarios: Sequence[Scenario],
    *,
    iterations: int,
    count: int,
    concurrency: int,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Send every scenario ``count`` times per iteration, ``concurrency`` at a time."""
    plan = [s for _ in range(iterations) for s in scenarios for _ in range(count)]

    def one(scenario: Scenario) -> Outcome:
        started = time.perf_counter()
        result = invoke(scenario)
        latency = (time.perf_counter() - started) * 1000
        outcome = Outcome(scenario, result, latency, scenario.problem(result))
        if progress is not None:
            progress.advance(outcome.problem is not None)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, plan))
