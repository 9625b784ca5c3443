"""The processes of one sandbox and the kernel's view of them.

POSIX only (process groups and job-control signals).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class SandboxProcess:
    """One process of a sandbox: the runtime or an extension."""

    name: str
    kind: str
    popen: subprocess.Popen[bytes]
    exit_code: int | None = None

    @property
    def alive(self) -> bool:
        return self.exit_code is None


def signal_group(pgid: int | None, sig: signal.Signals) -> None:
    """Send ``sig`` to a sandbox's process group, if any of it is left."""
    if pgid is None:
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        # Every process of the group has exited.
        return


def exit_text(processes: Iterable[SandboxProcess]) -> str:
    """How each process that ended did, as Lambda words a runtime exit."""
    texts = []
    for p in processes:
        if p.exit_code is None:
            continue
        if p.exit_code < 0:
            texts.append(f"{p.name}: signal: {signal.Signals(-p.exit_code).name}")
        else:
            texts.append(f"{p.name}: exit status {p.exit_code}")
    return "; ".join(texts)


@functools.cache
def python_version(python: str) -> str:
    """``3.X`` of an interpreter (asked once per interpreter)."""
    if python == sys.executable:
        return "{}.{}".format(*sys.version_info[:2])
    answer = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return answer.stdout.strip()


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (``T`` when stopped), where /proc exists."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_stopped(pid: int) -> bool:
    """Stopped, or gone: a frozen sandbox shows only these."""
    state = process_state(pid)
    return state is None or state in ("T", "t", "Z", "X")
