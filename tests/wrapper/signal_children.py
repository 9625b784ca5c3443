"""A process that starts children or takes SIGTERM, with or without the wrapper's shutdown save.

Run as ``python -m tests.wrapper.signal_children COMMAND WORKDIR ARG`` from the
repository root (a fresh interpreter: the test process's own signal state
must not leak in). It is also the module that ``multiprocessing``'s spawn and
forkserver children import to find :func:`wait_forever`.

``children WORKDIR KIND`` starts one child of ``KIND`` (see :data:`KINDS`),
reads its ``SigBlk``/``SigIgn``/``SigCgt`` from ``/proc/<pid>/status`` once it
is ready, terminates it as that API does, and prints both as JSON.
``INSTALL=1`` in the environment installs the shutdown save first (its save
writes ``WORKDIR/saved``).

``sigterm WORKDIR MODE`` installs the save in one of :data:`SIGTERM_MODES`,
prints ``{"installed": ...}`` and waits on stdin for the test's SIGTERM; a
handler of the function's writes ``WORKDIR/handler`` (whether the save was
there when it ran) and exits with 3: with ``sys.exit`` when installed after
the save, with ``os._exit`` (no exit hooks) when installed before it. In
``asyncio-before`` an event loop's SIGUSR1 handler was there first: the
process prints ``{"asyncio": "SIGUSR1"}`` once the loop has seen the signal.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

KINDS = (
    "subprocess",
    "subprocess-from-a-thread",
    "posix_spawn",
    "fork",
    "multiprocessing-fork",
    "multiprocessing-forkserver",
    "multiprocessing-spawn",
)
SIGTERM_MODES = (
    "default",
    "function-handler",
    "handler-before",
    "function-ignores",
    "ignored-before",
    "asyncio-before",
)
STATUS_FIELDS = ("SigBlk", "SigIgn", "SigCgt")
#: Bounds on waiting for a child's state to change; reaching one is a failure.
READY_WITHIN = 60.0
EXIT_WITHIN = 20.0

Ended = Callable[[], "int | None"]


def wait_forever(ready_dir: str) -> None:
    """The child: say it is ready, then wait for signals until one ends it."""
    Path(ready_dir, str(os.getpid())).touch()
    while True:
        signal.pause()


def _wait_until(condition: Callable[[], bool], within: float) -> bool:
    limit = time.monotonic() + within
    while not condition():
        if time.monotonic() >= limit:
            return False
        time.sleep(0.005)
    return True


def _status(pid: int) -> dict[str, list[int]]:
    """The signals in each of :data:`STATUS_FIELDS` of ``/proc/<pid>/status``.

    Left out: the real-time signals glibc keeps below ``SIGRTMIN`` for
    itself (cancellation, set*id). It installs a handler for them in a
    process the first time it starts a thread (any thread: the wrapper's,
    or awslambdaric's polling thread from Python 3.12), and a forked child
    inherits it, as it inherits the rest of glibc's state.
    """
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in STATUS_FIELDS:
            mask = int(value, 16)
            fields[name] = [
                number
                for number in range(1, signal.SIGRTMAX + 1)
                if mask >> (number - 1) & 1 and not 32 <= number < signal.SIGRTMIN
            ]
    return fields


def _reap(pid: int) -> int | None:
    """The child's exit code (negative: the signal), or None if it is still running."""
    found: list[int] = []

    def ended() -> bool:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            found.append(os.waitstatus_to_exitcode(status))
        return bool(found)

    return found[0] if _wait_until(ended, EXIT_WITHIN) else None


def _child_code(ready_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from tests.wrapper.signal_children import wait_forever; "
        "wait_forever(sys.argv[1])",
        str(ready_dir),
    ]


def _start(kind: str, ready_dir: Path) -> tuple[int, Callable[[], None], Ended]:
    """Start a child of ``kind``: its pid, how its API terminates it, how to learn its end."""
    if kind in ("subprocess", "subprocess-from-a-thread"):
        started: list[subprocess.Popen[bytes]] = []

        def popen() -> None:
            started.append(subprocess.Popen(_child_code(ready_dir)))

        if kind == "subprocess":
            popen()
        else:
            thread = threading.Thread(target=popen)
            thread.start()
            thread.join()
        (child,) = started

        def popen_ended() -> int | None:
            try:
                return child.wait(EXIT_WITHIN)
            except subprocess.TimeoutExpired:
                return None

        return child.pid, child.terminate, popen_ended
    if kind == "posix_spawn":
        code = _child_code(ready_dir)
        pid = os.posix_spawn(code[0], code, os.environ)
        return pid, lambda: os.kill(pid, signal.SIGTERM), lambda: _reap(pid)
    if kind == "fork":
        pid = os.fork()
        if pid == 0:
            try:
                wait_forever(str(ready_dir))
            finally:
                os._exit(70)
        return pid, lambda: os.kill(pid, signal.SIGTERM), lambda: _reap(pid)
    context: Any = multiprocessing.get_context(kind.removeprefix("multiprocessing-"))
    process: multiprocessing.Process = context.Process(target=wait_forever, args=(str(ready_dir),))
    process.start()
    assert process.pid is not None

    def process_ended() -> int | None:
        process.join(EXIT_WITHIN)
        code: int | None = process.exitcode
        return code

    return process.pid, process.terminate, process_ended


def _save_into(workdir: Path) -> Callable[[], None]:
    def save() -> None:
        (workdir / "saved").write_text("saved")

    return save


def observe_child(workdir: Path, kind: str) -> dict[str, object]:
    """Start, inspect and terminate one child of ``kind``."""
    installed = False
    if os.environ.get("INSTALL") == "1":
        from coverage_wrapper.shutdown import save_on_sigterm

        installed = save_on_sigterm(_save_into(workdir))
    ready_dir = workdir / "ready"
    ready_dir.mkdir()
    pid, terminate, ended = _start(kind, ready_dir)
    if not _wait_until((ready_dir / str(pid)).exists, READY_WITHIN):
        os.kill(pid, signal.SIGKILL)
        return {"installed": installed, "ready": False}
    status = _status(pid)
    terminate()
    exitcode = ended()
    if exitcode is None:
        os.kill(pid, signal.SIGKILL)
        ended()
    return {
        "installed": installed,
        "status": status,
        "exitcode": exitcode,
        # A forked child's SIGTERM must not reach the parent's save.
        "parent_saved": (workdir / "saved").exists(),
    }


def take_sigterm(workdir: Path, mode: str) -> None:
    """Install the save as ``mode`` says, then wait for the test's SIGTERM."""
    from coverage_wrapper.shutdown import save_on_sigterm

    def function_handler(signum: int, frame: FrameType | None) -> None:
        saved = (workdir / "saved").exists()
        (workdir / "handler").write_text(f"{signum} {'after' if saved else 'before'} the save")
        if mode == "handler-before":
            os._exit(3)
        sys.exit(3)

    loop = asyncio.new_event_loop()
    got: asyncio.Future[str] = loop.create_future()
    if mode == "asyncio-before":
        # asyncio's handlers come through the wake-up fd it sets here.
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1")
    if mode == "handler-before":
        signal.signal(signal.SIGTERM, function_handler)
    elif mode == "ignored-before":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    installed = save_on_sigterm(_save_into(workdir))
    if mode == "function-handler":
        signal.signal(signal.SIGTERM, function_handler)
    elif mode == "function-ignores":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(json.dumps({"installed": installed}), flush=True)
    if mode == "asyncio-before":
        # The test sends SIGUSR1 first.
        print(json.dumps({"asyncio": loop.run_until_complete(got)}), flush=True)
    # The test sends SIGTERM, then a line: reading it means SIGTERM did not end us.
    sys.stdin.readline()
    print(json.dumps({"alive": True}), flush=True)


def main(argv: list[str]) -> None:
    command, workdir, argument = argv
    if command == "children":
        print(json.dumps(observe_child(Path(workdir), argument)), flush=True)
    else:
        take_sigterm(Path(workdir), argument)


if __name__ == "__main__":
    main(sys.argv[1:])
