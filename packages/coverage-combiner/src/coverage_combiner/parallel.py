"""Fetch and merge inputs on every core: partial merges in worker processes, one final merge.

The inputs are cut into chunks. Worker processes each fetch their chunks
themselves (local files, or S3 objects with their own boto3 client) and keep
one partial merge, sent back compactly (:class:`~coverage_combiner.merge.Partial`)
when the work is done; after each chunk they report only what was rejected,
for progress. This process merges chunks too while the workers start and
run, then absorbs their partial merges into its own.

A worker is a new interpreter (``python -c``, started with :mod:`subprocess`)
that talks over two plain pipes, not a :mod:`multiprocessing` process: its
start methods other than ``fork`` re-run the caller's ``__main__`` in every
worker (a script without an ``if __name__ == "__main__"`` guard would run
again), ``fork`` is unsafe in a process with threads, the default method
changes in Python 3.14, and pools and queues need POSIX semaphores, which AWS
Lambda (no ``/dev/shm``) lacks. When no worker can be started, or there are
few inputs, everything is merged here, in one process. A worker that dies
has its chunks merged again here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Literal, NamedTuple, TypeVar

from coverage_combiner.claims import ClaimCheck
from coverage_combiner.errors import SourceError
from coverage_combiner.inputs import LOCAL_FILES, Input, S3Origin, fetch_bytes, s3_client
from coverage_combiner.merge import Merger, Partial
from coverage_combiner.reader import Rejected, schema_version

T = TypeVar("T")
R = TypeVar("R")

#: A stage of a combine, as progress reports name it.
Stage = Literal["listing", "fetching", "merging"]
#: Called with (stage, done, total): ``fetching`` or ``merging``.
Report = Callable[[Stage, int, int], None]

#: Below this many inputs per process, starting one costs more than it saves:
#: a worker process needs about 0.1 s to start and import, the time to merge
#: several hundred inputs.
MIN_INPUTS_PER_PROCESS = 500

#: Chunks each worker has queued, so that it never waits for the next one
#: while this process is busy merging a chunk of its own.
QUEUED_PER_WORKER = 2


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Task(NamedTuple):
    """One input as a worker process fetches it: a local file, or an object of ``bucket``.

    ``claims`` decides which of its contexts count, as in this process.
    """

    name: str
    size: int
    bucket: str | None
    claims: ClaimCheck | None = None


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    #: Replies come on ``connection``; chunks go out on ``sender``.
    connection: Connection
    sender: Connection
    #: Chunks sent and not yet reported, and chunks reported: the partial
    #: merge that holds their data arrives only at the end.
    queued: list[int] = field(default_factory=list)
    reported: list[int] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)


class _Progress:
    """Counts inputs fetched and merged, from any thread, and reports them."""

    def __init__(self, report: Report, total: int) -> None:
        self._report = report
        self._total = total
        self._lock = threading.Lock()
        self._done: dict[Stage, int] = {"fetching": 0, "merging": 0}

    def add(self, stage: Literal["fetching", "merging"], count: int = 1) -> None:
        with self._lock:
            self._done[stage] += count
            done = self._done[stage]
        self._report(stage, done, self._total)


@contextlib.contextmanager
def early_workers(processes: int) -> Iterator[list[_Worker]]:
    """Worker processes for up to ``processes`` processes in all, started now.

    A worker needs about 0.1 s to start and import, which it spends while
    this process looks up the data schema and lists the sources. Pass the
    list to :func:`merge_inputs`, which takes the workers it needs out of it;
    the rest are stopped on exit, unused.
    """
    started: list[_Worker] = []
    with contextlib.suppress(OSError):
        # No processes in this sandbox, no pipes left, no interpreter at sys.executable.
        started.extend(_spawn_workers(processes - 1))
    try:
        if started:
            # Importing coverage.py to learn its schema takes tens of milliseconds:
            # spent now, while the workers import, it does not hold them up later.
            schema_version()
        yield started
    finally:
        for worker in started:
            _kill(worker)


def merge_inputs(
    chosen: Sequence[Input],
    *,
    jobs: int,
    max_bytes: int,
    processes: int,
    report: Report,
    portable: bool = True,
    started: list[_Worker] | None = None,
) -> tuple[Merger, list[tuple[str, str]], list[tuple[str, str]]]:
    """Fetch, check and merge ``chosen`` with up to ``processes`` processes in all.

    ``jobs`` fetches run at once, shared among the processes. ``portable``
    says whether S3 inputs may be fetched by other processes with boto3's own
    configuration (not when the caller passed an S3 client of its own).
    ``started`` holds workers started already (:func:`early_workers`); those
    used are taken out of it. Returns the merger holding the union (the
    caller closes it), the rejected inputs with their reasons, and the inputs
    merged without the foreign claims they held, with what was left out
    (:mod:`coverage_combiner.claims`).
    """
    tasks = [_task(item, portable) for item in chosen]
    wanted = min(processes, len(chosen) // MIN_INPUTS_PER_PROCESS)
    workers: list[_Worker] = []
    if wanted > 1 and all(task is not None for task in tasks):
        workers = _start_workers(wanted - 1, -(-jobs // wanted), max_bytes, started or [])
    run = _Run(chosen, tasks, workers, _Progress(report, len(chosen)), max_bytes)
    with _fetch_pool(chosen, -(-jobs // (len(workers) + 1))) as pool:
        run.go(pool, -(-jobs // (len(workers) + 1)))
    return run.merger, run.rejected, run.foreign


class _Run:
    """One merge: the chunks, who has which, and what came back."""

    def __init__(
        self,
        chosen: Sequence[Input],
        tasks: list[Task | None],
        workers: list[_Worker],
        progress: _Progress,
        max_bytes: int,
    ) -> None:
        self.chosen = chosen
        self.tasks = tasks
        self.workers = workers
        self.progress = progress
        self.max_bytes = max_bytes
        # At the end this process waits for the chunks a worker has queued
        # (QUEUED_PER_WORKER): chunks of a few milliseconds' work keep that short.
        size = max(8, min(128, len(chosen) // (32 * (len(workers) + 1))))
        self.chunks = [
            range(start, min(start + size, len(chosen))) for start in range(0, len(chosen), size)
        ]
        self.pending = deque(range(len(self.chunks)))
        self.merger = Merger()
        self.rejected: list[tuple[str, str]] = []
        self.foreign: list[tuple[str, str]] = []

    def go(self, pool: ThreadPoolExecutor | None, jobs: int) -> None:
        """Merge every chunk, here or in a worker, and absorb the workers' partial merges."""
        while self.workers or self.pending:
            self._feed()
            if not self.pending and not any(worker.queued for worker in self.workers):
                # A worker lost now puts its chunks back in pending.
                for worker in list(self.workers):
                    self._finish(worker)
                continue
            for worker in self._ready(block=not self.pending):
                self._receive(worker)
            if self.pending:
                # From the far end: the workers take chunks from the near end.
                items = [self.chosen[i] for i in self.chunks[self.pending.pop()]]
                rejected, foreign = _merge_chunk(
                    self.merger, items, pool, jobs, self.max_bytes, self.progress
                )
                self.rejected.extend(rejected)
                self.foreign.extend(foreign)

    def _feed(self) -> None:
        for worker in list(self.workers):
            while self.pending and len(worker.queued) < QUEUED_PER_WORKER:
                number = self.pending.popleft()
                try:
                    worker.sender.send((number, [self.tasks[i] for i in self.chunks[number]]))
                except OSError:
                    self.pending.appendleft(number)
                    self._lost(worker)
                    break
                worker.queued.append(number)

    def _ready(self, *, block: bool) -> list[_Worker]:
        if not self.workers:
            return []
        by_connection = {worker.connection: worker for worker in self.workers}
        ready = wait(list(by_connection), timeout=None if block else 0)
        return [by_connection[connection] for connection in ready]  # type: ignore[index]

    def _receive(self, worker: _Worker) -> None:
        try:
            number, rejected, foreign = worker.connection.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        worker.queued.remove(number)
        worker.reported.append(number)
        worker.rejected.extend(rejected)
        worker.foreign.extend(foreign)
        self.progress.add("fetching", len(self.chunks[number]))
        self.progress.add("merging", len(self.chunks[number]))

    def _finish(self, worker: _Worker) -> None:
        """Ask a worker for its partial merge and absorb it."""
        try:
            worker.sender.send(None)
            partial: Partial = worker.connection.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        self.merger.absorb(partial)
        self.rejected.extend(worker.rejected)
        self.foreign.extend(worker.foreign)
        self.workers.remove(worker)
        # Its work is all here: the merge goes on while the process exits,
        # which takes tens of milliseconds.
        threading.Thread(target=_stop, args=(worker,), daemon=True).start()

    def _lost(self, worker: _Worker) -> None:
        """A worker died: its data never arrived, so all its chunks are merged again."""
        self.workers.remove(worker)
        _stop(worker)
        self.pending.extend(worker.queued + worker.reported)
        done = sum(len(self.chunks[number]) for number in worker.reported)
        self.progress.add("fetching", -done)
        self.progress.add("merging", -done)


def _task(item: Input, portable: bool) -> Task | None:
    if item.fetch is not None:
        return None
    if item.origin is LOCAL_FILES:
        return Task(item.name, item.size, None, item.claims)
    if portable and isinstance(item.origin, S3Origin):
        return Task(item.name, item.size, item.origin.bucket, item.claims)
    return None


def _start_workers(count: int, jobs: int, max_bytes: int, started: list[_Worker]) -> list[_Worker]:
    """``count`` workers, taken from ``started`` first, told what to do.

    As many as could be started (maybe none).
    """
    workers = started[:count]
    del started[:count]
    try:
        workers.extend(_spawn_workers(count - len(workers)))
        for worker in workers:
            worker.sender.send((jobs, max_bytes, schema_version()))
    except OSError:
        # No processes in this sandbox, no pipes left, no interpreter at sys.executable.
        for worker in workers:
            _kill(worker)
        return []
    return workers


def _spawn_workers(count: int) -> list[_Worker]:
    """Start ``count`` worker processes, waiting to be told what to do."""
    workers: list[_Worker] = []
    if count < 1:
        return workers
    # The worker imports this package from wherever this process did.
    path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    environment = {**os.environ, "PYTHONPATH": path}
    try:
        for _ in range(count):
            workers.append(_start_worker(environment))
    except OSError:
        for worker in workers:
            _kill(worker)
        raise
    return workers


_WORKER = (
    "import sys; from coverage_combiner.parallel import serve; "
    "serve(int(sys.argv[1]), int(sys.argv[2]))"
)


def _start_worker(environment: dict[str, str]) -> _Worker:
    theirs_in, mine_out = os.pipe()
    mine_in, theirs_out = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(theirs_in), str(theirs_out)],
            pass_fds=(theirs_in, theirs_out),
            env=environment,
            stdin=subprocess.DEVNULL,
            # Its stdout is not ours: --json output must stay JSON.
            stdout=subprocess.DEVNULL,
        )
    except OSError:
        os.close(mine_in)
        os.close(mine_out)
        raise
    finally:
        os.close(theirs_in)
        os.close(theirs_out)
    return _Worker(
        process, Connection(mine_in, writable=False), Connection(mine_out, readable=False)
    )


def _kill(worker: _Worker) -> None:
    """Stop a worker that holds no work: there is nothing to wait for."""
    worker.process.kill()
    _stop(worker)


def _stop(worker: _Worker) -> None:
    worker.sender.close()
    worker.connection.close()
    try:
        worker.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


def serve(read_fd: int, write_fd: int) -> None:
    """A worker process: merge the chunks it is sent; send its partial merge when told.

    Messages come on ``read_fd`` and go on ``write_fd`` (pipes from
    :func:`merge_inputs`); the worker ends when told, or when the pipe closes.
    """
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    pool: ThreadPoolExecutor | None = None
    try:
        jobs, max_bytes, expected = inbox.recv()
        merger = Merger(schema_version=expected)
        origins: dict[str, S3Origin] = {}
        silent = _Progress(lambda stage, done, total: None, 0)
        while (message := inbox.recv()) is not None:
            number, tasks = message
            items = [_input(task, origins) for task in tasks]
            if pool is None and any(task.bucket is not None for task in tasks):
                pool = ThreadPoolExecutor(max_workers=jobs)
            outbox.send((number, *_merge_chunk(merger, items, pool, jobs, max_bytes, silent)))
        outbox.send(merger.export())
        merger.close()
    except EOFError:
        pass  # the parent is gone, and with it the point of going on
    finally:
        if pool is not None:
            pool.shutdown()


def _input(task: Task, origins: dict[str, S3Origin]) -> Input:
    if task.bucket is None:
        return Input(task.name, task.size, None, origin=LOCAL_FILES, claims=task.claims)
    if task.bucket not in origins:
        origins[task.bucket] = S3Origin(s3_client(), task.bucket)
    return Input(task.name, task.size, None, origin=origins[task.bucket], claims=task.claims)


@contextlib.contextmanager
def _fetch_pool(items: Sequence[Input], jobs: int) -> Iterator[ThreadPoolExecutor | None]:
    """Threads to fetch with when some input is not a local file, else none.

    Reading a local file is a copy from the page cache: threads would only
    add their hand-over to it.
    """
    if jobs <= 1 or all(item.origin is LOCAL_FILES for item in items):
        yield None
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        yield pool


def _merge_chunk(  # noqa: PLR0917 (one call site per process kind)
    merger: Merger,
    items: Sequence[Input],
    pool: ThreadPoolExecutor | None,
    jobs: int,
    max_bytes: int,
    progress: _Progress,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Fetch ``items`` (in ``pool``, if any) and merge them in order.

    Returns the rejected inputs and those merged without foreign claims, each with why.
    """

    def fetch(item: Input) -> tuple[Input, bytes | Rejected]:
        try:
            if item.size > max_bytes:
                return item, Rejected(
                    f"{item.size} bytes is over the size cap of {max_bytes} (--max-bytes)"
                )
            return item, fetch_bytes(item)
        except SourceError as exc:
            return item, Rejected(str(exc))
        finally:
            progress.add("fetching")

    fetched: Iterable[tuple[Input, bytes | Rejected]] = (
        map(fetch, items)
        if pool is None
        else _bounded_map(
            pool, fetch, items, jobs, size=_fetched_size(max_bytes), max_bytes=max_bytes
        )
    )
    rejected: list[tuple[str, str]] = []
    foreign: list[tuple[str, str]] = []
    for item, outcome in fetched:
        try:
            if isinstance(outcome, Rejected):
                raise outcome
            claims = item.claims
            left_out = merger.add_bytes(item.name, outcome, max_bytes=max_bytes, claims=claims)
            if left_out and claims is not None:
                foreign.append((item.name, claims.describe(left_out)))
        except Rejected as exc:
            rejected.append((item.name, str(exc)))
        progress.add("merging")
    return rejected, foreign


def _fetched_size(max_bytes: int) -> Callable[[Input], int]:
    """The bytes fetching an input brings into memory, as listed (none when it is over the cap)."""
    return lambda item: item.size if item.size <= max_bytes else 0


def _bounded_map(
    pool: ThreadPoolExecutor,
    work: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    *,
    size: Callable[[T], int] = lambda item: 0,
    max_bytes: int | None = None,
) -> Iterator[R]:
    """``pool.map`` that keeps few results in memory at once: by count, and by bytes.

    ``Executor.map`` submits everything up front, so with thousands of inputs
    every fetched file would sit in memory before it is merged. Here at most
    ``jobs * 4`` items are in flight (submitted, and not yet taken by the
    caller), and, when ``max_bytes`` is given, items whose ``size`` adds up to
    at most ``max_bytes``: a cap-sized input fetched by every thread would
    otherwise hold ``jobs * 4`` times the cap. One item is always let through,
    whatever its size, so that every item is fetched.
    """
    window: deque[tuple[Future[R], int]] = deque()
    in_flight = 0
    pending = iter(items)
    waiting: list[T] = []

    def fill() -> None:
        nonlocal in_flight
        while len(window) < max(1, jobs) * 4:
            if not waiting:
                waiting.extend(itertools.islice(pending, 1))
                if not waiting:
                    return
            weight = size(waiting[0])
            if window and max_bytes is not None and in_flight + weight > max_bytes:
                return
            item = waiting.pop()
            in_flight += weight
            window.append((pool.submit(work, item), weight))

    fill()
    while window:
        future, weight = window.popleft()
        result = future.result()
        # Taken by the caller once yielded: what it holds is its own (one input
        # being merged), not the window's.
        in_flight -= weight
        fill()
        yield result
