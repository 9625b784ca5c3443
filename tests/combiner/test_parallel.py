"""Several processes merge exactly what one process merges, and one process is the fallback."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from coverage_combiner import CombineOptions, CombineResult, SourceError, combine, parallel
from coverage_combiner.cli import EXIT_PARTIAL, EXIT_USAGE, main
from coverage_combiner.reader import schema_version
from tests.combiner.conftest import key, write_data

# The module, not the function the package exports under its name.
combine_module = sys.modules["coverage_combiner.combine"]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def few_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for a handful of inputs (normally they pay off from hundreds)."""
    monkeypatch.setattr(parallel, "MIN_INPUTS_PER_PROCESS", 1)


def inputs(root: Path, count: int = 40) -> Path:
    """``count`` inputs, many byte-identical to others, two of them junk."""
    variants = [
        write_data(
            root / "variants" / f"{n}.coverage",
            arcs={f"orders@{n % 2}": {"app.py": {(-1, 1), (1, n + 2)}, f"m{n}.py": {(n, -n)}}},
        )
        for n in range(7)
    ]
    folder = root / "in"
    for pid in range(count - 2):
        # Under the key of the function and version its contexts name.
        target = folder / key(version=str(pid % 7 % 2), pid=pid)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(variants[pid % 7], target)
    (folder / key(pid=998)).parent.mkdir(parents=True, exist_ok=True)
    (folder / key(pid=998)).write_bytes(b"junk")
    write_data(folder / key("billing", "1", pid=999), lines={"billing@1": {"bill.py": {3, 4}}})
    return folder


class Recorder:
    def __init__(self) -> None:
        self.merging: list[int] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "merging":
            self.merging.append(done)

    @property
    def by_workers(self) -> bool:
        """A worker reports whole chunks; this process reports input by input."""
        steps = [b - a for a, b in zip([0, *self.merging], self.merging, strict=False)]
        return any(step > 1 for step in steps)


def summary(result: CombineResult) -> tuple[object, ...]:
    merged = result.merged
    return (
        merged.has_arcs,
        merged.arcs,
        merged.lines,
        merged.line_contexts,
        merged.inputs,
        result.duplicates,
        result.rejected,
    )


@pytest.mark.usefixtures("few_per_process")
def test_worker_processes_merge_exactly_what_one_process_merges(tmp_path: Path) -> None:
    folder = inputs(tmp_path)
    alone = combine([str(folder)], CombineOptions(processes=1, version="all"))
    recorder = Recorder()

    together = combine([str(folder)], CombineOptions(processes=2, version="all"), recorder)

    assert recorder.by_workers
    assert recorder.merging[-1] == 40
    assert summary(together) == summary(alone)
    assert together.duplicates == 38 - 7
    assert together.merged.arcs[("billing@1", "bill.py")] == {(-3, 3), (-4, 4)}
    assert [name for name, _ in together.rejected] == [str(folder / key(pid=998))]


@pytest.mark.usefixtures("few_per_process")
def test_no_worker_can_start_and_this_process_merges_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = inputs(tmp_path)
    alone = combine([str(folder)], CombineOptions(processes=1, version="all"))
    # What a sandbox without another interpreter (or without processes) answers.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    recorder = Recorder()

    result = combine([str(folder)], CombineOptions(processes=4, version="all"), recorder)

    assert not recorder.by_workers
    assert summary(result) == summary(alone)


@pytest.mark.usefixtures("few_per_process")
def test_a_worker_that_dies_has_its_chunks_merged_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = inputs(tmp_path)
    alone = combine([str(folder)], CombineOptions(processes=1, version="all"))
    # A worker that starts, takes its chunks and exits without a word.
    quitter = tmp_path / "quitter"
    quitter.write_text("#!/bin/sh\nsleep 0.2\n")
    quitter.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(quitter))
    recorder = Recorder()

    result = combine([str(folder)], CombineOptions(processes=2, version="all"), recorder)

    assert summary(result) == summary(alone)
    assert recorder.merging[-1] == 40


@pytest.mark.usefixtures("few_per_process")
def test_workers_fetch_s3_objects_with_their_own_client(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    folder = inputs(tmp_path, count=24)
    for path in sorted(folder.rglob("*.coverage")):
        s3.put_object(
            Bucket=bucket, Key=path.relative_to(folder).as_posix(), Body=path.read_bytes()
        )
    source = f"s3://{bucket}/coverage/"
    alone = combine([source], CombineOptions(processes=1, version="all"))
    recorder = Recorder()

    together = combine([source], CombineOptions(processes=2, version="all", jobs=4), recorder)

    assert recorder.by_workers
    assert summary(together) == summary(alone)
    assert len(together.merged.inputs) == 23


@pytest.mark.usefixtures("few_per_process")
def test_processes_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = inputs(tmp_path)
    out = tmp_path / "out"
    args = ["combine", str(folder), "-o", str(out), "--format", "data,json", "--json"]
    assert main([*args, "--processes", "2"]) == EXIT_PARTIAL  # the junk input
    two = json.loads(capsys.readouterr().out)
    assert main([*args, "--processes", "1"]) == EXIT_PARTIAL
    one = json.loads(capsys.readouterr().out)
    assert two["inputs"] == one["inputs"]
    assert two["inputs"]["identical_to_another"] == 31
    assert main([*args, "--processes", "0"]) == EXIT_USAGE
    assert "'0' must be at least 1" in capsys.readouterr().err


class Spawned:
    """Records when workers are started, and keeps them to look at afterwards."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self.workers: list[parallel._Worker] = []
        spawn = parallel._spawn_workers
        list_source = combine_module.list_source

        def spawning(count: int) -> list[parallel._Worker]:
            self.events.append(f"spawn {count}")
            started = spawn(count)
            self.workers.extend(started)
            return started

        def listing(*args: Any, **kwargs: Any) -> Any:
            self.events.append("list")
            return list_source(*args, **kwargs)

        monkeypatch.setattr(parallel, "_spawn_workers", spawning)
        monkeypatch.setattr(combine_module, "list_source", listing)


@pytest.mark.usefixtures("few_per_process")
def test_workers_start_while_the_sources_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = inputs(tmp_path)
    alone = combine([str(folder)], CombineOptions(processes=1, version="all"))
    spawned = Spawned(monkeypatch)
    recorder = Recorder()

    together = combine([str(folder)], CombineOptions(processes=3, version="all"), recorder)

    assert spawned.events == ["spawn 2", "list", "spawn 0"]
    assert recorder.by_workers
    assert summary(together) == summary(alone)
    assert [worker.process.wait(timeout=10) for worker in spawned.workers] == [0, 0]


def test_workers_started_early_and_not_needed_are_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = inputs(tmp_path)
    alone = combine([str(folder)], CombineOptions(processes=1, version="all"))
    spawned = Spawned(monkeypatch)
    recorder = Recorder()

    # 40 inputs are too few for a second process.
    result = combine([str(folder)], CombineOptions(processes=2, version="all"), recorder)

    assert spawned.events == ["spawn 1", "list"]
    assert not recorder.by_workers
    assert summary(result) == summary(alone)
    assert [worker.process.returncode is not None for worker in spawned.workers] == [True]


def test_a_failed_listing_stops_the_workers_started_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned = Spawned(monkeypatch)

    with pytest.raises(SourceError, match="neither a file, a folder"):
        combine([str(tmp_path / "missing")], CombineOptions(processes=2))

    assert spawned.events == ["spawn 1", "list"]
    assert [worker.process.returncode is not None for worker in spawned.workers] == [True]


def test_the_schema_is_looked_up_while_the_workers_start() -> None:
    schema_version.cache_clear()

    with parallel.early_workers(2) as started:
        assert len(started) == 1
        # Known before the listing, so that telling a worker what to do waits for nothing.
        assert schema_version.cache_info().currsize == 1

    assert [worker.process.returncode is not None for worker in started] == [True]


@pytest.mark.usefixtures("few_per_process")
def test_the_merge_does_not_wait_for_a_finished_worker_to_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = inputs(tmp_path)
    stopped: list[tuple[parallel._Worker, threading.Thread]] = []
    stop = parallel._stop

    called = threading.Event()

    def recording(worker: parallel._Worker) -> None:
        stopped.append((worker, threading.current_thread()))
        called.set()
        stop(worker)

    monkeypatch.setattr(parallel, "_stop", recording)

    combine([str(folder)], CombineOptions(processes=2, version="all"))

    assert called.wait(timeout=10)
    assert len(stopped) == 1
    worker, thread = stopped[0]
    assert thread is not threading.main_thread()
    thread.join(timeout=10)
    assert worker.process.returncode == 0
