"""The load test's driver: every scenario sent many times, concurrently, each answer checked."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from test_stack.invocations import InvokeResult
from test_stack.scenarios import Scenario

if TYPE_CHECKING:
    from tqdm import tqdm

Invoker = Callable[[Scenario], InvokeResult]


@dataclass(frozen=True)
class Outcome:
    """One invoke of one scenario: the answer, the caller's latency, what was wrong."""

    scenario: Scenario
    result: InvokeResult
    latency_ms: float
    problem: str | None


class Progress:
    """Invokes done and failed, drawn by tqdm on a terminal; silent anywhere else."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._lock = threading.Lock()
        self._bar: tqdm[Any] | None = None

    def advance(self, failed: bool) -> None:
        """Count one finished invoke and redraw."""
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            if not self.enabled:
                return
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, file=self.stream, unit=" invokes", leave=True)
            self._bar.set_postfix_str(f"{self.failed} failed", refresh=False)
            self._bar.update(1)
            if self.done == self.total:
                self._bar.close()


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
