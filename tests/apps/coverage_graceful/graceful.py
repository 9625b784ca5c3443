"""A function with a SIGTERM course of its own that starts a child (line numbers matter).

``SIGTERM_COURSE`` at init: ``handler`` installs a handler that appends
``function SIGTERM`` to ``EVENTS_FILE``; ``ignore`` ignores SIGTERM.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

CHILD = "import signal\nprint('ready', flush=True)\nwhile True:\n    signal.pause()\n"


def on_sigterm(signum: int, frame: Any) -> None:
    with open(os.environ["EVENTS_FILE"], "a") as events:
        events.write("function SIGTERM\n")


COURSE = os.environ.get("SIGTERM_COURSE")
if COURSE == "handler":
    signal.signal(signal.SIGTERM, on_sigterm)
elif COURSE == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    child.stdout.readline()
    status = Path(f"/proc/{child.pid}/status").read_text().splitlines()
    child.terminate()
    try:
        code = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        code = child.wait()
    child.stdout.close()
    signals = [line for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
    return {"child_signals": signals, "child_exit": code}
