"""The spool: data files waiting in /tmp until S3 has them.

Each entry is a data file plus a small JSON sidecar with its S3 key and
metadata; the sidecar is written last, so an entry without one is incomplete
and ignored. Several processes can share /tmp (Lambda Managed Instances), so
a process takes only its own entries and those of processes that have died;
the layer's extension, which uploads for every process of the sandbox while
they are between invocations, takes them all.

Snapshots of one process are cumulative, so a newer entry of a process makes
its older ones of the same run redundant: they are removed as *superseded*,
which loses nothing. An entry of another run stays: its key is the only one
that names that run. The spool is bounded: past ``max_files`` the oldest entries are
dropped, counted and logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

_DATA = ".coverage"
_META = ".json"
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class SpoolEntry:
    """One data file waiting for upload."""

    name: str
    data_path: Path
    meta_path: Path
    key: str
    metadata: dict[str, str]
    pid: int
    seq: int
    created: float

    @property
    def size(self) -> int:
        """Bytes of the data file (0 if it has gone)."""
        try:
            return self.data_path.stat().st_size
        except OSError:
            return 0

    def read(self) -> bytes:
        """The data file's bytes."""
        return self.data_path.read_bytes()


class Spool:
    """A folder of pending uploads under the spool directory."""

    def __init__(self, spool_dir: str, max_files: int) -> None:
        self.directory = Path(spool_dir) / "pending"
        self.max_files = max_files

    def add(
        self, source: Path, *, name: str, key: str, metadata: dict[str, str], seq: int
    ) -> SpoolEntry:
        """Copy the data file at ``source`` into the spool as a complete entry."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data_path = self.directory / f"{name}{_DATA}"
        meta_path = self.directory / f"{name}{_META}"
        tmp_data = data_path.with_name(f".{data_path.name}.tmp")
        _copy_file(source, tmp_data)
        os.replace(tmp_data, data_path)
        entry = SpoolEntry(
            name=name,
            data_path=data_path,
            meta_path=meta_path,
            key=key,
            metadata=dict(metadata),
            pid=os.getpid(),
            seq=seq,
            created=time.time(),
        )
        tmp_meta = meta_path.with_name(f".{meta_path.name}.tmp")
        tmp_meta.write_text(
            json.dumps(
                {
                    "key": key,
                    "metadata": entry.metadata,
                    "pid": entry.pid,
                    "seq": seq,
                    "created": entry.created,
                }
            )
        )
        os.replace(tmp_meta, meta_path)
        return entry

    def entries(self, *, any_process: bool = False) -> list[SpoolEntry]:
        """Entries this process may upload, oldest first (``any_process``: all of them)."""
        found: list[SpoolEntry] = []
        try:
            metas = list(self.directory.glob(f"*{_META}"))
        except OSError:
            return found
        me = os.getpid()
        for meta_path in metas:
            entry = _load(meta_path)
            if entry is None:
                continue
            if not any_process and entry.pid != me and process_alive(entry.pid):
                continue
            found.append(entry)
        found.sort(key=lambda e: (e.created, e.seq))
        return found

    def remove(self, entry: SpoolEntry) -> None:
        """Delete an entry (after upload, or when dropped)."""
        # The sidecar goes first: without it the entry no longer counts.
        for path in (entry.meta_path, entry.data_path):
            with contextlib.suppress(OSError):
                path.unlink()

    def remove_superseded(self, newest: SpoolEntry) -> int:
        """Remove this process's entries of the same run older than ``newest``; return how many."""
        removed = 0
        run = newest.metadata.get("run-id")
        for entry in self.entries():
            if (
                entry.pid == newest.pid
                and entry.seq < newest.seq
                and entry.metadata.get("run-id") == run
            ):
                self.remove(entry)
                removed += 1
        return removed

    def enforce_bound(self) -> list[SpoolEntry]:
        """Drop the oldest entries beyond ``max_files``; return the dropped ones."""
        entries = self.entries()
        excess = len(entries) - self.max_files
        dropped = entries[:excess] if excess > 0 else []
        for entry in dropped:
            self.remove(entry)
        return dropped

    def backlog(self) -> tuple[int, int]:
        """Number and total bytes of the entries waiting, all processes included."""
        count = size = 0
        try:
            for meta_path in self.directory.glob(f"*{_META}"):
                count += 1
                with contextlib.suppress(OSError):
                    size += meta_path.with_suffix(_DATA).stat().st_size
        except OSError:
            return 0, 0
        return count, size


def _load(meta_path: Path) -> SpoolEntry | None:
    try:
        raw = json.loads(meta_path.read_text())
        data_path = meta_path.with_suffix(_DATA)
        if not data_path.exists():
            return None
        return SpoolEntry(
            name=meta_path.name[: -len(_META)],
            data_path=data_path,
            meta_path=meta_path,
            key=str(raw["key"]),
            metadata={str(k): str(v) for k, v in dict(raw["metadata"]).items()},
            pid=int(raw["pid"]),
            seq=int(raw["seq"]),
            created=float(raw["created"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _copy_file(source: Path, target: Path) -> None:
    # Not shutil.copyfile: importing shutil loads bz2 and lzma, 2-8 ms of every
    # cold start measured here, for one copy of a small file per flush.
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(_COPY_CHUNK):
            writer.write(chunk)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
