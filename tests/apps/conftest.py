"""Fixtures for the test stack's tests: the local runtime, a probe function, a recording layer."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from test_stack.functions import LambdaFunction
from test_stack.layer import Layer, build_wrapper_layer
from test_stack.pytest_fixtures import local_lambda
from test_stack.s3_server import moto_s3_server, s3_client

__all__ = ["local_lambda"]

LIFECYCLE_DIR = Path(__file__).resolve().parent / "lifecycle"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = LambdaFunction(name="probe", code_dir=LIFECYCLE_DIR, handler="probe.handler", timeout=10)


def interpreters() -> dict[tuple[int, int], str]:
    """Pythons with awslambdaric: this one, and the wrapper's compat environments if built."""
    found = {(sys.version_info[0], sys.version_info[1]): sys.executable}
    for python in sorted(
        (REPO_ROOT / ".hatch" / "env" / "virtual").glob("compat.py3.*/bin/python")
    ):
        minor = int(python.parent.parent.name.removeprefix("compat.py3."))
        found.setdefault((3, minor), str(python))
    return found


@pytest.fixture(scope="module")
def s3_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, with the test module's ``BUCKET`` created."""
    with moto_s3_server() as url:
        s3_client(url).create_bucket(Bucket=request.module.BUCKET)
        yield url


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Layer:
    """The wrapper's layer as it ships, unzipped (one per test module)."""
    return build_wrapper_layer(tmp_path_factory.mktemp("layer") / "opt")


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    """The file the probe's SIGTERM handler and the recorder extension append to."""
    path = tmp_path / "events.log"
    path.touch()
    return path


@pytest.fixture
def recorder_layer(tmp_path: Path) -> Layer:
    """A layer whose ``extensions/recorder`` starts the recording extension."""
    layer = Layer(tmp_path / "opt")
    layer.extensions_dir.mkdir(parents=True)
    script = layer.extensions_dir / "recorder"
    script.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" "{LIFECYCLE_DIR / "recorder_extension.py"}" '
        '"$(basename "$0")"\n'
    )
    script.chmod(0o755)
    return layer


def event_lines(path: Path) -> list[str]:
    """The recorded events, without process ids and deadlines."""
    lines = []
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:2] == ["runtime", "started"]:
            lines.append("runtime started")
        elif words[1] == "SHUTDOWN":
            lines.append(" ".join(words[:4]))
        else:
            lines.append(line)
    return lines


def wait_for(condition: Callable[[], bool], timeout: float, *, every: float = 0.01) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds."""
    limit = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= limit:
            return False
        time.sleep(every)
    return True


def holds_for(condition: Callable[[], bool], seconds: float, *, every: float = 0.01) -> bool:
    """Whether ``condition()`` stayed true for ``seconds``, checked every ``every`` s.

    For what must *not* happen (a frozen process must not run): it answers
    ``False`` the moment the condition breaks.
    """
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if not condition():
            return False
        time.sleep(every)
    return condition()
