"""The layer's extension under the local runtime: the function never uploads, nothing is lost.

Each test runs the ``paths`` function in zero-code mode with the layer as it
ships (``extensions/lambda-coverage`` beside ``python/``) under real
``awslambdaric`` processes, freeze between invokes, and SIGTERM then SHUTDOWN
when a container is retired; S3 is moto's server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from coverage_wrapper.constants import EXTENSION_NAME, FLUSH_POLICIES
from coverage_wrapper.extension import NICENESS
from test_stack.functions import LambdaFunction
from test_stack.instrument import instrument
from test_stack.layer import Layer
from test_stack.pytest_fixtures import PoolFactory
from test_stack.s3_server import s3_client, s3_environment
from tests.apps.conftest import interpreters
from tests.wrapper.conftest import union_arcs, union_lines, uploads

pytestmark = pytest.mark.slow

BUCKET = "extension-coverage"
PATHS = LambdaFunction(
    name="paths",
    code_dir=Path(__file__).resolve().parent / "coverage_paths",
    handler="paths.handler",
    timeout=10,
)
#: Lines of ``paths.py`` run at import (zero-code mode measures init).
INIT_LINES = {1, 3, 4, 7}
#: Lines each event runs.
PATH_LINES = {
    "a": {8, 9, 10, 17, 18},
    "b": {8, 9, 11, 12, 17, 18},
    "c": {8, 9, 11, 13, 14, 17, 18},
    "none": {8, 9, 11, 13, 16},
}
INIT_ARCS = {(-1, 1), (1, 3), (3, 4), (4, 7), (7, -1)}
#: The generator expression of line 17 is a code object of its own.
_LOADED = {(17, 18), (-17, 17), (17, 17), (17, -17)}
PATH_ARCS = {
    "a": {(-7, 8), (8, 9), (9, 10), (10, 17), (18, -7)} | _LOADED,
    "b": {(-7, 8), (8, 9), (9, 11), (11, 12), (12, 17), (18, -7)} | _LOADED,
}
PYTHONS = sorted(interpreters().items())


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests sharing the bucket never see each other."""
    name = request.node.name.replace("[", "-").replace("]", "").replace(".", "")
    return f"{name}/"


def measured(layer: Layer, prefix: str, **settings: str) -> LambdaFunction:
    return instrument(PATHS, layer=layer, bucket=BUCKET, prefix=prefix, **settings)


def objects(s3_endpoint: str, prefix: str) -> list[str]:
    listing = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def lines_in_s3(s3_endpoint: str, prefix: str, tmp_path: Path) -> set[int]:
    found = [
        u for u in uploads(s3_client(s3_endpoint), BUCKET, tmp_path) if u.key.startswith(prefix)
    ]
    return union_lines(found).get("paths.py", set())


def test_the_layer_carries_the_extension_as_an_executable(layer: Layer) -> None:
    (executable,) = layer.extensions()
    assert executable == layer.extensions_dir / EXTENSION_NAME
    assert executable.stat().st_mode & stat.S_IXUSR
    assert executable.read_text().startswith("#!/usr/bin/env python3\n")


@pytest.mark.parametrize("policy", FLUSH_POLICIES)
def test_answers_and_errors_are_unchanged_in_every_policy(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str, policy: str
) -> None:
    plain = replace(PATHS, name="plain")
    function = measured(layer, prefix, COVERAGE_FLUSH_POLICY=policy)
    pool = local_lambda([plain, function], environment=s3_environment(s3_endpoint))
    for path in ("a", "b", "none", "a", "c", "none"):
        expected = pool.invoke("plain", {"path": path})
        actual = pool.invoke("paths", {"path": path})
        assert actual.error_type == expected.error_type
        want, got = expected.json(), actual.json()
        if expected.ok:
            assert got == want
        else:
            assert (got["errorType"], got["errorMessage"], got["stackTrace"][-1]) == (
                want["errorType"],
                want["errorMessage"],
                want["stackTrace"][-1],
            )


@pytest.mark.parametrize("policy", FLUSH_POLICIES)
def test_the_lines_of_the_last_invocation_before_shutdown_reach_s3(
    local_lambda: PoolFactory,
    s3_endpoint: str,
    layer: Layer,
    prefix: str,
    tmp_path: Path,
    policy: str,
) -> None:
    function = measured(layer, prefix, COVERAGE_FLUSH_POLICY=policy, COVERAGE_FLUSH_INTERVAL="3600")
    pool = local_lambda([function], environment=s3_environment(s3_endpoint), idle_timeout=None)
    for _ in range(5):
        assert pool.invoke("paths", {"path": "a"}).ok
    # New lines, in an invocation no policy but `invocation` flushes after...
    assert pool.invoke("paths", {"path": "b"}).ok
    before = lines_in_s3(s3_endpoint, prefix, tmp_path)
    expected_before = {
        "invocation": INIT_LINES | PATH_LINES["a"] | PATH_LINES["b"],
        "adaptive": INIT_LINES | PATH_LINES["a"],
        "interval": set(),
        "shutdown": set(),
    }[policy]
    assert before == expected_before

    # ...and the container is retired right after it.
    (report,) = pool.retire()

    assert report.actions() == ["SIGTERM runtime", f"SHUTDOWN {EXTENSION_NAME}"]
    assert report.exit_codes == {EXTENSION_NAME: 0, "runtime": -signal.SIGTERM}
    assert (
        lines_in_s3(s3_endpoint, prefix, tmp_path) == INIT_LINES | PATH_LINES["a"] | PATH_LINES["b"]
    )
    found = [
        u for u in uploads(s3_client(s3_endpoint), BUCKET, tmp_path) if u.key.startswith(prefix)
    ]
    assert union_arcs(found)["paths.py"] == INIT_ARCS | PATH_ARCS["a"] | PATH_ARCS["b"]


@pytest.mark.parametrize(
    "python", [path for _, path in PYTHONS], ids=[f"python{a}.{b}" for (a, b), _ in PYTHONS]
)
def test_every_python_saves_at_sigterm_without_a_signal_handler(
    local_lambda: PoolFactory,
    s3_endpoint: str,
    layer: Layer,
    prefix: str,
    tmp_path: Path,
    python: str,
) -> None:
    # Before 3.12 awslambdaric's main thread waits in native code, where a
    # Python signal handler never runs; the wrapper's sigwait thread does.
    function = measured(layer, prefix, COVERAGE_FLUSH_POLICY="shutdown")
    pool = local_lambda(
        [function], environment=s3_environment(s3_endpoint), idle_timeout=None, python=python
    )
    assert pool.invoke("paths", {"path": "c"}).ok
    assert objects(s3_endpoint, prefix) == []

    (report,) = pool.retire()

    assert report.exit_codes["runtime"] == -signal.SIGTERM
    assert lines_in_s3(s3_endpoint, prefix, tmp_path) == INIT_LINES | PATH_LINES["c"]


def test_the_function_process_never_imports_the_aws_sdk(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str
) -> None:
    function = measured(layer, prefix, COVERAGE_FLUSH_POLICY="invocation")
    pool = local_lambda([function], environment=s3_environment(s3_endpoint), idle_timeout=None)
    answers = [pool.invoke("paths", {"path": path}) for path in ("a", "b", "c", "a")]

    assert [a.json()["aws_sdk_modules"] for a in answers] == [[], [], [], []]
    # The extension uploaded each new snapshot between the invocations.
    assert len(objects(s3_endpoint, prefix)) == 3
    (container,) = pool.containers()
    log = [
        json.loads(line)
        for line in container.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    uploaded = [line for line in log if line["message"] == "Coverage file uploaded successfully"]
    assert {line.get("uploaded_by") for line in uploaded} == {"extension"}


def test_the_extension_yields_the_cpu_to_the_runtime(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str
) -> None:
    pool = local_lambda(
        [measured(layer, prefix)], environment=s3_environment(s3_endpoint), idle_timeout=None
    )
    assert pool.invoke("paths", {"path": "a"}).ok
    (container,) = pool.containers()
    (extension,) = container.extension_pids
    (runtime,) = set(container.pids) - {extension}
    runtime_nice = os.getpriority(os.PRIO_PROCESS, runtime)
    assert os.getpriority(os.PRIO_PROCESS, extension) == min(19, runtime_nice + NICENESS)


def test_no_new_object_when_nothing_new_ran(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str
) -> None:
    function = measured(layer, prefix, COVERAGE_FLUSH_POLICY="invocation")
    pool = local_lambda([function], environment=s3_environment(s3_endpoint), idle_timeout=None)
    for _ in range(6):
        assert pool.invoke("paths", {"path": "a"}).ok
    assert len(objects(s3_endpoint, prefix)) == 1
    pool.retire()
    # Not even at shutdown: the last snapshot already held everything.
    assert len(objects(s3_endpoint, prefix)) == 1


def test_without_the_extension_the_invocation_uploads_itself(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str, tmp_path: Path
) -> None:
    bare = Layer(tmp_path / "opt")
    bare.python_dir.mkdir(parents=True)
    os.symlink(layer.python_dir / "coverage_wrapper", bare.python_dir / "coverage_wrapper")
    function = measured(bare, prefix)
    pool = local_lambda([function], environment=s3_environment(s3_endpoint), idle_timeout=None)
    assert pool.invoke("paths", {"path": "a"}).ok
    assert len(objects(s3_endpoint, prefix)) == 1
    # The first invocation's upload imported the SDK, in the function process.
    assert pool.invoke("paths", {"path": "a"}).json()["aws_sdk_modules"] != []


def test_an_invocation_is_not_held_when_the_wrapper_is_disabled(
    local_lambda: PoolFactory, s3_endpoint: str, layer: Layer, prefix: str
) -> None:
    function = measured(layer, prefix, COVERAGE_ENABLED="false")
    pool = local_lambda([function], environment=s3_environment(s3_endpoint), idle_timeout=None)
    results = [pool.invoke("paths", {"path": "a"}) for _ in range(3)]
    assert all(r.ok for r in results)
    (container,) = pool.containers()
    assert container.extension_names == [EXTENSION_NAME]
    (report,) = pool.retire()
    assert report.exit_codes[EXTENSION_NAME] == 0
    assert objects(s3_endpoint, prefix) == []
