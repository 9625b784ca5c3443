"""Children see SIGTERM as without the wrapper, and the shutdown save still runs at SIGTERM.

Each case runs :mod:`tests.wrapper.signal_children` in a fresh interpreter:
once as a plain process, once with the shutdown save installed
(:func:`coverage_wrapper.shutdown.save_on_sigterm`, what the layer's
extension turns on). A child's signal mask, ignored and caught signals are
read from ``/proc/<pid>/status``; the child is then terminated the way its
API does it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.wrapper.signal_children import KINDS

REPO_ROOT = Path(__file__).resolve().parents[2]
WRAPPER_SRC = REPO_ROOT / "packages" / "coverage-wrapper" / "src"

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs Linux's /proc"
)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(WRAPPER_SRC)])
    env.update(extra)
    return env


def _observe(workdir: Path, kind: str, *, install: bool) -> dict[str, object]:
    workdir.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tests.wrapper.signal_children", "children", str(workdir), kind],
        cwd=REPO_ROOT,
        env=_environment(INSTALL="1" if install else "0"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_a_child_has_the_signal_state_it_has_without_the_wrapper(tmp_path: Path, kind: str) -> None:
    without = _observe(tmp_path / "without", kind, install=False)
    with_save = _observe(tmp_path / "with", kind, install=True)

    assert without["installed"] is False
    assert with_save["installed"] is True
    assert with_save["status"] == without["status"]
    assert without["exitcode"] == -signal.SIGTERM
    assert with_save["exitcode"] == -signal.SIGTERM
    # SIGTERM went to the child alone: the parent did not save (or end).
    assert with_save["parent_saved"] is False


#: The function's own handler runs beside the save: either may come first.
AFTER_OR_BEFORE = "15 after or before the save"


class _Process:
    """The ``sigterm`` command of the program, started and waiting for the test's SIGTERM."""

    def __init__(self, workdir: Path, mode: str) -> None:
        self.workdir = workdir
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.wrapper.signal_children", "sigterm", str(workdir), mode],
            cwd=REPO_ROOT,
            env=_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        self.installed = json.loads(self.popen.stdout.readline())["installed"]

    def terminate(self, *, then_go_on: bool) -> tuple[int, str]:
        """Send SIGTERM (and then a line, when it should not end the process).

        Returns the exit code and what the process printed after SIGTERM.
        Sending a line only where SIGTERM is ignored keeps this free of
        races: where SIGTERM ends the process, it ends it on its own.
        """
        assert self.popen.stdin is not None
        assert self.popen.stdout is not None
        with self.popen:
            try:
                self.popen.send_signal(signal.SIGTERM)
                if then_go_on:
                    self.popen.stdin.write("go on\n")
                    self.popen.stdin.flush()
                return self.popen.wait(timeout=60), self.popen.stdout.read()
            finally:
                if self.popen.poll() is None:
                    self.popen.kill()

    def files(self) -> dict[str, str]:
        return {p.name: p.read_text() for p in sorted(self.workdir.iterdir())}


@pytest.mark.parametrize(
    ("mode", "installed", "exitcode", "ignored", "files"),
    [
        # SIGTERM's default: saved, then the process ends as SIGTERM ends it.
        ("default", True, -signal.SIGTERM, False, {"saved": "saved"}),
        # The function's handler, installed after the save (zero-code order),
        # runs as without us, beside the save; its sys.exit waits for the save.
        ("function-handler", True, 3, False, {"handler": AFTER_OR_BEFORE, "saved": "saved"}),
        # A handler from before (a decorated handler's module) is called by
        # ours once the save is done: even its os._exit loses nothing.
        ("handler-before", True, 3, False, {"handler": "15 after the save", "saved": "saved"}),
        # SIG_IGN set by the function still ignores (and nothing can save then).
        ("function-ignores", True, 0, True, {}),
        # Ignored from the start: nothing is installed, exec'd children keep ignoring it.
        ("ignored-before", False, 0, True, {}),
    ],
)
def test_sigterm_takes_the_course_it_had_and_the_save_runs_first(
    tmp_path: Path, mode: str, installed: bool, exitcode: int, ignored: bool, files: dict[str, str]
) -> None:
    process = _Process(tmp_path, mode)
    assert process.installed is installed

    code, printed = process.terminate(then_go_on=ignored)

    assert code == exitcode
    assert printed == ('{"alive": true}\n' if ignored else "")
    found = process.files()
    if files.get("handler") is AFTER_OR_BEFORE:
        assert found["handler"] in ("15 after the save", "15 before the save")
        files = {**files, "handler": found["handler"]}
    assert found == files


def test_a_wake_up_fd_set_before_keeps_receiving_signals(tmp_path: Path) -> None:
    # asyncio's add_signal_handler sets the wake-up fd; the save's takes its
    # place and passes every byte on, or the loop would never see SIGUSR1.
    process = _Process(tmp_path, "asyncio-before")
    assert process.installed is True
    assert process.popen.stdout is not None
    watchdog = threading.Timer(60, process.popen.kill)
    watchdog.start()
    try:
        process.popen.send_signal(signal.SIGUSR1)
        assert json.loads(process.popen.stdout.readline()) == {"asyncio": "SIGUSR1"}

        assert process.terminate(then_go_on=False) == (-signal.SIGTERM, "")
    finally:
        watchdog.cancel()
    assert process.files() == {"saved": "saved"}


def test_the_sigterm_benchmark_runs_in_smoke_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "wrapper" / "sigterm.py"), "--smoke"],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"sigwait", "wakeup-fd"}
    for mechanism in figures.values():
        assert set(mechanism) == {"install_us", "to_saved_ms", "to_exit_ms"}
