"""The hand-off between the function process and the layer's extension.

When the extension registers it listens on a Unix datagram socket (in the
abstract namespace, named after the spool folder, so no path length limit
applies) and then writes the marker ``{COVERAGE_SPOOL_DIR}/extension.json``
(``/tmp/lambda-coverage/extension.json`` on Lambda) with its pid. The
function process checks that the marker exists once per flush (one
``stat``) and, while it does, only writes snapshots into the spool and never
uploads (nor imports boto3). Without it (the wrapper installed from a zip,
local tests) the flush uploads in the call, as before. The extension
removes the marker when it exits.

The function process tells the extension three things, each one small
datagram sent without blocking:

- ``attach``: this process (its pid) will say when each invocation is done,
  so the extension waits for it before uploading. Sent when the wrapper's
  session starts (at init in zero-code mode, at the first call otherwise).
- ``done``: the invocation with this request id is over and whatever it
  flushed is in the spool; the runtime is posting the answer, so the
  extension can upload without the caller waiting.
- ``final``: the process saved its last snapshot after SIGTERM (shutdown).

A lost datagram costs time, never data: the extension waits at most until
the invocation's (or the shutdown's) deadline, or until the process is gone,
and then uploads whatever the spool holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from coverage_wrapper.spool import process_alive

MARKER_NAME: Final = "extension.json"
#: What the function process tells the extension: see :data:`ATTACH`, :data:`DONE`, :data:`FINAL`.
Message = Literal["attach", "done", "final"]
ATTACH: Final[Message] = "attach"
DONE: Final[Message] = "done"
FINAL: Final[Message] = "final"


def marker_path(spool_dir: str | os.PathLike[str]) -> Path:
    """The file that says the extension runs for this spool."""
    return Path(spool_dir) / MARKER_NAME


def socket_address(spool_dir: str | os.PathLike[str]) -> bytes:
    """Where the extension listens: an abstract socket name derived from the spool folder."""
    digest = hashlib.sha256(os.path.abspath(spool_dir).encode()).hexdigest()[:24]
    return f"\0lambda-coverage-{digest}".encode()


class ExtensionLink:
    """The function process's side: is the extension there, and tell it things."""

    def __init__(self, spool_dir: str) -> None:
        self.marker = str(marker_path(spool_dir))
        self.address = socket_address(spool_dir)
        self._socket: socket.socket | None = None

    def present(self) -> bool:
        """Whether the extension runs in this sandbox (one ``stat`` of its marker)."""
        return os.path.exists(self.marker)

    def send(self, kind: Message, request_id: str | None = None) -> bool:
        """Send one message; False when the extension did not take it (gone or busy)."""
        if not self.present():
            return False
        message = json.dumps({"kind": kind, "pid": os.getpid(), "request_id": request_id})
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never block the function: a full queue drops the message.
                sock.setblocking(False)
                self._socket = sock
            self._socket.sendto(message.encode(), self.address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Close the socket (a new one is made on the next send)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


@dataclass
class Inbox:
    """The extension's side: what the function processes said."""

    marker: Path
    attached: set[int] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    final: set[int] = field(default_factory=set)
    _socket: socket.socket | None = None

    @classmethod
    def bind(cls, spool_dir: str | os.PathLike[str]) -> Inbox:
        """Listen for the spool's processes, then write the marker that tells them so."""
        marker = marker_path(spool_dir)
        marker.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(socket_address(spool_dir))
            sock.setblocking(False)
            scratch = marker.with_name(f".{marker.name}.tmp")
            scratch.write_text(json.dumps({"pid": os.getpid()}))
            os.replace(scratch, marker)
        except OSError:
            sock.close()
            raise
        return cls(marker, _socket=sock)

    @classmethod
    def unbound(cls, spool_dir: str | os.PathLike[str]) -> Inbox:
        """An inbox that hears nothing: without a marker the processes upload themselves."""
        return cls(marker_path(spool_dir))

    def drain(self) -> None:
        """Read every message waiting, without blocking."""
        sock = self._socket
        if sock is None:
            return
        while True:
            try:
                raw = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._take(raw)

    def _take(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            kind, pid, request_id = message["kind"], int(message["pid"]), message["request_id"]
        except (ValueError, KeyError, TypeError):
            return
        if kind == ATTACH:
            self.attached.add(pid)
        elif kind == DONE and isinstance(request_id, str):
            self.attached.add(pid)
            self.done.add(request_id)
        elif kind == FINAL:
            self.final.add(pid)

    def live_attached(self) -> set[int]:
        """Attached processes that still exist (forgetting those that do not)."""
        self.attached = {pid for pid in self.attached if process_alive(pid)}
        return set(self.attached)

    def wait_done(self, request_id: str, deadline: float) -> bool:
        """Wait until an attached process says ``request_id`` is done, or none is left."""
        return self._wait(lambda: request_id in self.done, deadline)

    def wait_final(self, deadline: float) -> bool:
        """Wait until every attached process saved its last snapshot or is gone."""
        return self._wait(lambda: not (self.live_attached() - self.final), deadline)

    def _wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        sock = self._socket
        while True:
            self.drain()
            if predicate():
                return True
            if not self.live_attached():
                return False
            left = deadline - time.monotonic()
            if left <= 0 or sock is None:
                return False
            # Wake for a message, or every 50 ms to see whether the process died.
            select.select([sock], [], [], min(left, 0.05))

    def forget(self, request_id: str) -> None:
        """Drop what was said about an invocation that is over."""
        self.done.discard(request_id)

    def close(self) -> None:
        """Remove the marker and stop listening."""
        if self._socket is None:
            return
        with contextlib.suppress(OSError):
            self.marker.unlink()
        self._socket.close()
        self._socket = None
