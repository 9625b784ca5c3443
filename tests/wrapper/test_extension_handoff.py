"""The function process's side of the hand-off, with this test standing in for the extension.

The test listens as the extension does (:class:`coverage_wrapper.handoff.Inbox`,
which writes the marker); a child Python process plays the runtime: it calls
a decorated handler, then blocks in a read on its main thread, as
awslambdaric blocks in native code, until the test sends SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coverage
import pytest

from coverage_wrapper.extension import install_extension
from coverage_wrapper.handoff import ExtensionLink, Inbox
from coverage_wrapper.spool import Spool
from tests.wrapper.conftest import write_module
from tests.wrapper.sample_functions import (
    ORDERS,
    ORDERS_BIG_ORDER_LINES,
    ORDERS_SMALL_ORDER_LINES,
)

WRAPPER_SRC = Path(__file__).resolve().parents[2] / "packages" / "coverage-wrapper" / "src"

RUNTIME = """\
import json, sys, time
from awslambdaric.lambda_context import LambdaContext
from coverage_wrapper import coverage_handler
import orders

handler = coverage_handler(orders.handler)
for number, event in enumerate(json.loads(sys.argv[1])):
    context = LambdaContext(f"req-{number}", None, None, int(time.time() * 1000) + 60000, "arn")
    handler(event, context)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
print(json.dumps({"aws_sdk_modules": loaded}), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def inbox(spool_dir: Path) -> Iterator[Inbox]:
    listening = Inbox.bind(spool_dir)
    yield listening
    listening.close()


@contextlib.contextmanager
def running(
    tmp_path: Path, spool_dir: Path, events: list[dict[str, Any]], **settings: str
) -> Iterator[subprocess.Popen[str]]:
    """The child runtime, after it served ``events``; killed if still running at the end."""
    task_root = tmp_path / "task"
    task_root.mkdir()
    write_module(task_root, "orders.py", ORDERS)
    (tmp_path / "runtime.py").write_text(RUNTIME)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_"))}
    env.update(
        PYTHONPATH=f"{task_root}{os.pathsep}{WRAPPER_SRC}",
        LAMBDA_TASK_ROOT=str(task_root),
        AWS_LAMBDA_FUNCTION_NAME="orders",
        COVERAGE_S3_BUCKET="never-used",
        COVERAGE_SPOOL_DIR=str(spool_dir),
        **settings,
    )
    with subprocess.Popen(
        [sys.executable, str(tmp_path / "runtime.py"), json.dumps(events)],
        cwd=task_root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as runtime:
        try:
            yield runtime
        finally:
            if runtime.poll() is None:
                runtime.kill()


def spooled_lines(spool_dir: Path) -> list[set[int]]:
    found = []
    for entry in Spool(str(spool_dir), 20).entries(any_process=True):
        data = coverage.CoverageData(basename=str(entry.data_path))
        data.read()
        found.append(set(data.lines("orders.py") or ()))
    return found


def test_the_marker_follows_the_extension(spool_dir: Path) -> None:
    link = ExtensionLink(str(spool_dir))
    assert not link.present()
    assert not link.send("done", "req-1")
    inbox = Inbox.bind(spool_dir)
    assert link.present()
    assert link.send("done", "req-1")
    inbox.drain()
    assert inbox.done == {"req-1"}
    assert inbox.attached == {os.getpid()}
    inbox.close()
    link.close()
    assert not link.present()


def test_with_the_extension_the_process_only_spools_and_says_when_it_is_done(
    tmp_path: Path, spool_dir: Path, inbox: Inbox
) -> None:
    events = [{"prices": [10, 20]}, {"prices": [10, 20]}]
    with running(tmp_path, spool_dir, events) as runtime:
        assert runtime.stdout is not None
        answer = json.loads(runtime.stdout.readline())
        assert answer == {"aws_sdk_modules": []}
        assert inbox.wait_done("req-1", time.monotonic() + 5)
        assert inbox.done == {"req-0", "req-1"}
        assert inbox.live_attached() == {runtime.pid}
        # The second invocation replayed the first's path: one snapshot, no upload.
        assert spooled_lines(spool_dir) == [ORDERS_SMALL_ORDER_LINES]


def test_sigterm_saves_the_last_snapshot_without_a_python_signal_handler(
    tmp_path: Path, spool_dir: Path, inbox: Inbox
) -> None:
    events = [{"prices": [10, 20]}, {"prices": [100, 20]}]
    with running(tmp_path, spool_dir, events, COVERAGE_FLUSH_POLICY="shutdown") as runtime:
        assert runtime.stdout is not None
        runtime.stdout.readline()
        assert inbox.wait_done("req-1", time.monotonic() + 5)
        assert spooled_lines(spool_dir) == []

        runtime.send_signal(signal.SIGTERM)

        assert runtime.wait(timeout=5) == -signal.SIGTERM
    inbox.drain()
    assert inbox.final == {runtime.pid}
    assert spooled_lines(spool_dir) == [ORDERS_SMALL_ORDER_LINES | ORDERS_BIG_ORDER_LINES]


def test_the_layer_gets_the_executable_of_the_wrapper_it_holds(tmp_path: Path) -> None:
    layer = tmp_path / "opt"
    assert install_extension(layer) is None
    (layer / "python").mkdir(parents=True)
    os.symlink(WRAPPER_SRC / "coverage_wrapper", layer / "python" / "coverage_wrapper")
    executable = install_extension(layer)
    assert executable == layer / "extensions" / "lambda-coverage"
    assert os.access(executable, os.X_OK)
    assert (
        executable.read_bytes()
        == (WRAPPER_SRC / "coverage_wrapper" / "extension_launcher.py").read_bytes()
    )
