"""What the wrapper has done in this process, for the health check."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

#: What a flush did with its snapshot: uploaded it, left it in the spool (no
#: bucket, uploads paused, no time left), handed it to the layer's extension,
#: or failed (to save, to spool, or to upload).
FlushOutcome = Literal["uploaded", "spooled", "handed-off", "failed"]


def utc_now() -> str:
    """The time now, as a flush record and the health check write it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FlushRecord:
    """The outcome of the last flush."""

    outcome: FlushOutcome
    s3_key: str | None = None
    bytes: int | None = None
    upload_time_ms: float | None = None
    error: str | None = None
    time: str = field(default_factory=utc_now)


@dataclass
class ProcessStatus:
    """Counters and the last flush; shared by every entry point of the process."""

    invocations: int = 0
    measured_invocations: int = 0
    #: Outermost ``CoverageContext`` blocks measured outside an invocation of ours.
    measured_blocks: int = 0
    uploaded_files: int = 0
    failed_uploads: int = 0
    dropped_files: int = 0
    superseded_files: int = 0
    last_flush: FlushRecord | None = None
    problems: list[str] = field(default_factory=list)
    #: Options a later handler asked for that the process's first configuration overrode.
    ignored_options: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_problem(self, problem: str) -> None:
        """Remember a problem once (shown by the health check)."""
        with self.lock:
            if problem not in self.problems:
                self.problems.append(problem)

    def add_ignored_options(self, names: list[str]) -> None:
        """Remember options of a later handler that the first configuration overrode."""
        with self.lock:
            self.ignored_options = sorted({*self.ignored_options, *names})

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        with self.lock:
            return {
                "invocations": self.invocations,
                "measured_invocations": self.measured_invocations,
                "measured_blocks": self.measured_blocks,
                "uploaded_files": self.uploaded_files,
                "failed_uploads": self.failed_uploads,
                "dropped_files": self.dropped_files,
                "superseded_files": self.superseded_files,
                "last_flush": asdict(self.last_flush) if self.last_flush else None,
            }
