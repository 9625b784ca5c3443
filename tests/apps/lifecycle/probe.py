"""A function that reports on its own sandbox, for the local runtime's lifecycle tests.

Module level (init), driven by the function's environment:
``TICKER_FILE`` starts a background thread that writes a growing counter to
that file every few milliseconds; ``EVENTS_FILE`` gets a line with this
process's id. ``SIGTERM_HANDLER`` picks how SIGTERM is caught: ``signal``
installs a Python signal handler; ``thread`` blocks SIGTERM in every thread
and waits for it in a thread of its own (``signal.sigwait``). Either appends
``runtime SIGTERM`` to ``EVENTS_FILE`` and exits, unless ``SIGTERM_EXITS=0``
(then it only records).

An event may ask to ``sleep`` for some seconds or to ``exit`` the process
with a code; the answer describes the process and its environment.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

TICKS = 0
REPORTED_VARIABLES = (
    "_HANDLER",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "LAMBDA_TASK_ROOT",
    "PYTHONPATH",
    "TMPDIR",
    "PROBE_SETTING",
)


def _tick(path: Path) -> None:
    global TICKS  # noqa: PLW0603 - the counter the test watches
    scratch = path.with_suffix(".writing")
    while True:
        TICKS += 1
        # Written aside and renamed: the freeze may stop this thread mid-write.
        scratch.write_text(str(TICKS))
        os.replace(scratch, path)
        time.sleep(0.005)


def _record_sigterm(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
    with open(os.environ["EVENTS_FILE"], "a") as events:
        events.write("runtime SIGTERM\n")
    if os.environ.get("SIGTERM_EXITS", "1") != "0":
        # Not sys.exit: interpreter shutdown would wait for the runtime's
        # polling thread, which is blocked on the Runtime API.
        os._exit(0)


def _wait_for_sigterm() -> None:
    signal.sigwait({signal.SIGTERM})
    _record_sigterm()


if os.environ.get("TICKER_FILE"):
    threading.Thread(target=_tick, args=(Path(os.environ["TICKER_FILE"]),), daemon=True).start()
if os.environ.get("EVENTS_FILE"):
    with open(os.environ["EVENTS_FILE"], "a") as started:
        started.write(f"runtime started {os.getpid()}\n")
if os.environ.get("SIGTERM_HANDLER") == "signal":
    signal.signal(signal.SIGTERM, _record_sigterm)
elif os.environ.get("SIGTERM_HANDLER") == "thread":
    # Threads inherit the mask: only the waiting thread ever takes SIGTERM,
    # whichever thread the runtime client happens to block in.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threading.Thread(target=_wait_for_sigterm, daemon=True).start()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep or exit as asked, then describe this process."""
    if "exit" in event:
        os._exit(int(event["exit"]))
    time.sleep(float(event.get("sleep", 0)))
    return {
        "pid": os.getpid(),
        "ticks": TICKS,
        "cwd": os.getcwd(),
        "sys_path": sys.path,
        "environment": {name: os.environ.get(name) for name in REPORTED_VARIABLES},
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
