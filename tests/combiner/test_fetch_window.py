"""Fetched bodies waiting to be merged are bounded by bytes, not only by count."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from coverage_combiner.inputs import LOCAL_FILES, Input
from coverage_combiner.merge import Merger
from coverage_combiner.parallel import _merge_chunk, _Progress
from tests.combiner.conftest import write_data

_MB = 1_000_000


class _InFlight:
    """Bytes of inputs handed to the fetch threads and not yet taken by the merge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def add(self, size: int) -> None:
        with self._lock:
            self.now += size
            self.peak = max(self.peak, self.now)


class _CountingPool(ThreadPoolExecutor):
    """A thread pool that counts the listed bytes of every input submitted to it."""

    def __init__(self, in_flight: _InFlight, workers: int) -> None:
        super().__init__(max_workers=workers)
        self._in_flight = in_flight

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        (item,) = args
        assert isinstance(item, Input)
        self._in_flight.add(item.size)
        return super().submit(fn, *args, **kwargs)


class _CountingMerger(Merger):
    """A merger that counts each input's bytes out of the window as it takes them."""

    def __init__(self, in_flight: _InFlight, sizes: dict[str, int]) -> None:
        super().__init__()
        self._in_flight = in_flight
        self._sizes = sizes

    def add_bytes(self, name: str, data: bytes, **options: Any) -> tuple[str, ...]:
        self._in_flight.add(-self._sizes[name])
        return super().add_bytes(name, data, **options)


def _padded(path: Path, number: int, pad: int) -> Path:
    """A valid data file of about ``pad`` bytes (coverage.py ignores meta keys it does not know)."""
    write_data(path, lines={"fn@1": {f"m{number}.py": {number + 1}}})
    with sqlite3.connect(path) as db:
        db.execute("insert into meta (key, value) values ('padding', randomblob(?))", (pad,))
    return path


def test_large_inputs_in_flight_stay_within_the_byte_budget(tmp_path: Path) -> None:
    # 40 inputs of about 1.5 MB, 8 fetch threads: by count alone, 32 of them
    # (48 MB) would be fetched ahead of the merge; the budget is 4 MB.
    files = [_padded(tmp_path / f"in{i}.coverage", i, 1_500_000) for i in range(40)]
    items = [Input(str(p), p.stat().st_size, None, origin=LOCAL_FILES) for p in files]
    budget = 4 * _MB
    in_flight = _InFlight()
    merger = _CountingMerger(in_flight, {item.name: item.size for item in items})
    silent = _Progress(lambda stage, done, total: None, 0)

    with _CountingPool(in_flight, 8) as pool:
        rejected, foreign = _merge_chunk(merger, items, pool, 8, budget, silent)

    assert (rejected, foreign) == ([], [])
    # What waits in the window, plus the one input being merged.
    assert 2 * 1_500_000 < in_flight.peak <= budget + max(item.size for item in items)
    assert in_flight.now == 0
    assert merger.result().lines_by_file() == {f"m{i}.py": {i + 1} for i in range(40)}
    merger.close()


def test_an_input_over_the_budget_alone_is_still_fetched_and_merged(tmp_path: Path) -> None:
    # The window always lets one input through: a budget below an input's size
    # slows the fetch down to one at a time, and loses nothing.
    files = [_padded(tmp_path / f"in{i}.coverage", i, 600_000) for i in range(6)]
    items = [Input(str(p), p.stat().st_size, None, origin=LOCAL_FILES) for p in files]
    in_flight = _InFlight()
    merger = _CountingMerger(in_flight, {item.name: item.size for item in items})
    silent = _Progress(lambda stage, done, total: None, 0)

    with _CountingPool(in_flight, 4) as pool:
        rejected, _ = _merge_chunk(merger, items, pool, 4, 700_000, silent)

    # Each is merged; the window held one at a time (with the one being merged: two).
    assert rejected == []
    assert in_flight.peak <= 2 * max(item.size for item in items)
    assert merger.result().lines_by_file() == {f"m{i}.py": {i + 1} for i in range(6)}
    merger.close()
