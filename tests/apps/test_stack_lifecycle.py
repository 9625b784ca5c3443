"""The local runtime behaves like Lambda: init once, warm reuse, freeze, scale-out, shutdown."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from test_stack.invocations import ContainerState
from test_stack.layer import Layer
from test_stack.processes import process_state
from test_stack.pytest_fixtures import PoolFactory
from tests.apps.conftest import (
    LIFECYCLE_DIR,
    PROBE,
    event_lines,
    holds_for,
    interpreters,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_a_warm_container_serves_the_next_invokes(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=None)
    results = [pool.invoke("probe", {}) for _ in range(3)]

    assert all(r.ok for r in results), [r.payload for r in results]
    assert {r.container_id for r in results} == {results[0].container_id}
    assert {r.json()["pid"] for r in results} == {results[0].json()["pid"]}
    assert results[0].init_duration_ms is not None
    assert [r.init_duration_ms for r in results[1:]] == [None, None]
    (container,) = pool.containers("probe")
    assert container.invocations == 3


def test_concurrent_invokes_scale_out_and_then_reuse(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=None)
    results: list[Any] = [None] * 3
    barrier = threading.Barrier(3)

    def call(index: int) -> None:
        barrier.wait()
        results[index] = pool.invoke("probe", {"sleep": 0.4})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({r.container_id for r in results}) == 3
    assert len({r.json()["pid"] for r in results}) == 3
    assert all(r.init_duration_ms is not None for r in results)
    # Three warm containers now: the next invoke is warm and starts nothing.
    after = pool.invoke("probe", {})
    assert after.container_id in {r.container_id for r in results}
    assert after.init_duration_ms is None
    assert len(pool.containers("probe")) == 3


def test_the_concurrency_limit_queues_invokes(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=None, max_concurrency=1)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(pool.invoke("probe", {"sleep": 0.2})))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({r.container_id for r in results}) == 1
    assert len(pool.containers("probe")) == 1


def test_a_frozen_container_runs_no_thread(local_lambda: PoolFactory, tmp_path: Path) -> None:
    ticker = tmp_path / "ticks"
    probe = PROBE.with_environment(TICKER_FILE=str(ticker))
    pool = local_lambda([probe], idle_timeout=None)

    first = pool.invoke("probe", {"sleep": 0.2})
    (container,) = pool.containers("probe")
    assert container.frozen
    assert {process_state(pid) for pid in container.pids} == {"T"}
    frozen_at = int(ticker.read_text())
    # The thread ran while the invoke did (more than 5 ticks in 0.2 s)...
    assert frozen_at >= first.json()["ticks"] > 5
    # ...and not one tick while the container was frozen, over more than 7 tick periods.
    assert holds_for(lambda: int(ticker.read_text()) == frozen_at, 0.3)

    second = pool.invoke("probe", {"sleep": 0.1})
    assert second.json()["ticks"] > frozen_at
    assert second.container_id == first.container_id


def test_a_retired_container_gets_sigterm_then_shutdown(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    probe = replace(PROBE, layer=recorder_layer).with_environment(EVENTS_FILE=str(events_file))
    pool = local_lambda([probe], idle_timeout=None)
    result = pool.invoke("probe", {})
    (container,) = pool.containers("probe")
    assert container.extension_names == ["recorder"]
    pids = container.pids

    (report,) = pool.retire("probe")

    assert report.actions() == ["SIGTERM runtime", "SHUTDOWN recorder"]
    assert event_lines(events_file) == [
        "extension registered recorder",
        "runtime started",
        f"extension INVOKE {result.request_id}",
        # SIGTERM ended the runtime before the extension heard of the shutdown.
        "extension SHUTDOWN spindown runtime-gone",
    ]
    assert report.exit_codes == {"recorder": 0, "runtime": -signal.SIGTERM}
    assert container.state is ContainerState.RETIRED
    assert not pool.containers()
    assert not [pid for pid in pids if _alive(pid)]


BLOCKING_POLL = {v: p for v, p in interpreters().items() if v < (3, 12)}


PYTHONS = sorted(interpreters().items())


@pytest.mark.parametrize(
    "python", [path for _, path in PYTHONS], ids=[f"python{a}.{b}" for (a, b), _ in PYTHONS]
)
def test_a_runtime_that_waits_for_sigterm_in_a_thread_gets_it_before_shutdown(
    local_lambda: PoolFactory,
    recorder_layer: Layer,
    events_file: Path,
    python: str,
) -> None:
    probe = replace(PROBE, layer=recorder_layer).with_environment(
        EVENTS_FILE=str(events_file), SIGTERM_HANDLER="thread"
    )
    pool = local_lambda([probe], idle_timeout=None, python=python)
    pool.invoke("probe", {})

    (report,) = pool.retire("probe")

    assert report.actions() == ["SIGTERM runtime", "SHUTDOWN recorder"]
    assert event_lines(events_file)[-2:] == [
        "runtime SIGTERM",
        "extension SHUTDOWN spindown runtime-gone",
    ]
    assert report.exit_codes == {"recorder": 0, "runtime": 0}


@pytest.mark.skipif(not BLOCKING_POLL, reason="no Python before 3.12 with awslambdaric here")
def test_before_python_3_12_a_python_signal_handler_never_runs(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    # awslambdaric waits for the next event inside native code on the main
    # thread there, so a Python signal handler cannot run: the grace runs out
    # and the runtime is killed. (From 3.12 it polls in a thread, and the
    # handler runs only when the signal happens to reach the main thread.)
    python = BLOCKING_POLL[max(BLOCKING_POLL)]
    probe = replace(PROBE, layer=recorder_layer).with_environment(
        EVENTS_FILE=str(events_file), SIGTERM_HANDLER="signal"
    )
    pool = local_lambda([probe], idle_timeout=None, python=python, runtime_grace=0.3)
    pool.invoke("probe", {})

    (report,) = pool.retire("probe")

    assert report.actions() == ["SIGTERM runtime", "SIGKILL runtime", "SHUTDOWN recorder"]
    assert "runtime SIGTERM" not in event_lines(events_file)
    assert report.exit_codes == {"recorder": 0, "runtime": -signal.SIGKILL}


def test_what_ignores_the_shutdown_is_killed_at_the_deadline(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    probe = replace(PROBE, layer=recorder_layer).with_environment(
        EVENTS_FILE=str(events_file),
        SIGTERM_HANDLER="signal",
        SIGTERM_EXITS="0",
        RECORDER_IGNORE_SHUTDOWN="1",
    )
    pool = local_lambda([probe], idle_timeout=None, runtime_grace=0.2, shutdown_deadline=0.6)
    pool.invoke("probe", {})

    (report,) = pool.retire("probe")

    assert report.actions() == [
        "SIGTERM runtime",
        "SIGKILL runtime",
        "SHUTDOWN recorder",
        "SIGKILL recorder",
    ]
    times = {what: when for when, what in report.steps}
    # Not before the grace and the deadline, and in that order; how late a
    # loaded machine's timers fire is not this test's business.
    assert 0.2 <= times["SIGKILL runtime"] <= times["SHUTDOWN recorder"]
    assert times["SIGKILL recorder"] >= 0.6
    assert report.exit_codes == {"recorder": -9, "runtime": -9}
    assert event_lines(events_file)[-1] == "extension SHUTDOWN spindown runtime-gone"


def test_without_extensions_the_runtime_is_killed_without_sigterm(
    local_lambda: PoolFactory, events_file: Path
) -> None:
    probe = PROBE.with_environment(EVENTS_FILE=str(events_file), SIGTERM_HANDLER="signal")
    pool = local_lambda([probe], idle_timeout=None)
    pool.invoke("probe", {})

    (report,) = pool.retire()

    assert report.actions() == ["SIGKILL runtime"]
    assert report.exit_codes == {"runtime": -9}
    assert event_lines(events_file) == ["runtime started"]


def test_retire_one_waits_for_the_invoke_and_routes_new_ones_elsewhere(
    local_lambda: PoolFactory,
) -> None:
    pool = local_lambda([PROBE], idle_timeout=None, max_concurrency=2)
    first = pool.invoke("probe", {})
    results: list[Any] = []
    busy = threading.Thread(target=lambda: results.append(pool.invoke("probe", {"sleep": 0.5})))
    busy.start()
    assert wait_for(lambda: any(c.state is ContainerState.BUSY for c in pool.containers()), 5)

    retired: list[Any] = []
    retirer = threading.Thread(target=lambda: retired.append(pool.retire_one("probe")))
    retirer.start()
    # While it drains, a new invoke goes to a new container.
    other = pool.invoke("probe", {})
    busy.join()
    retirer.join()

    (report,) = retired
    assert report.container_id == first.container_id == results[0].container_id
    assert results[0].ok
    assert other.container_id != first.container_id
    assert other.init_duration_ms is not None
    assert [c.id for c in pool.containers()] == [other.container_id]
    assert pool.retire_one("probe") is not None
    assert pool.retire_one("probe") is None


def test_idle_containers_are_retired(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=0.3)
    first = pool.invoke("probe", {})

    assert wait_for(lambda: not pool.containers(), 5)
    assert [(r.container_id, r.reason) for r in pool.retired] == [(first.container_id, "spindown")]
    assert pool.invoke("probe", {}).init_duration_ms is not None


def test_an_invoke_past_the_timeout_fails_and_resets_the_sandbox(
    local_lambda: PoolFactory,
) -> None:
    pool = local_lambda([replace(PROBE, timeout=0.5)], idle_timeout=None)
    started = time.monotonic()
    result = pool.invoke("probe", {"sleep": 300})

    # The invoke ended at the timeout, not when the handler's sleep would have:
    # the bound is half the sleep, far from any machine's speed.
    assert time.monotonic() - started < 150
    assert result.error_type == "Sandbox.Timedout"
    assert result.function_error == "Unhandled"
    assert "Task timed out after 0.50 seconds" in result.json()["errorMessage"]
    assert [r.reason for r in pool.retired] == ["timeout"]
    assert not pool.containers()
    assert pool.invoke("probe", {}).init_duration_ms is not None


def test_the_remaining_time_follows_the_timeout(local_lambda: PoolFactory) -> None:
    pool = local_lambda([replace(PROBE, timeout=3)], idle_timeout=None)
    remaining = pool.invoke("probe", {}).json()["remaining_ms"]
    assert 2000 < remaining <= 3000


def test_a_runtime_that_dies_fails_the_invoke(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=None)
    result = pool.invoke("probe", {"exit": 3})

    assert result.error_type == "Runtime.ExitError"
    assert "exit status 3" in result.json()["errorMessage"]
    assert [r.reason for r in pool.retired] == ["failure"]
    assert pool.invoke("probe", {}).ok


def test_an_init_error_is_the_invoke_answer(local_lambda: PoolFactory) -> None:
    broken = replace(PROBE, name="broken", handler="nowhere.handler")
    pool = local_lambda([broken], idle_timeout=None)
    result = pool.invoke("broken", {})

    assert result.error_type == "Runtime.ImportModuleError"
    assert "nowhere" in result.json()["errorMessage"]
    assert not pool.containers()


def test_an_extension_init_error_fails_init(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    probe = replace(PROBE, layer=recorder_layer).with_environment(
        EVENTS_FILE=str(events_file), RECORDER_INIT_ERROR="no bucket configured"
    )
    pool = local_lambda([probe], idle_timeout=None)
    result = pool.invoke("probe", {})

    assert result.error_type == "Extension.ConfigInvalid"
    assert result.json() == {
        "errorType": "Extension.ConfigInvalid",
        "errorMessage": "extension recorder reported an init error: no bucket configured",
    }
    # The function's code never ran: init stopped at the extension's error.
    assert "runtime started" not in event_lines(events_file)
    assert not pool.containers()
    assert [r.reason for r in pool.retired] == ["failure"]


def test_a_container_that_cannot_start_leaves_nothing_behind(local_lambda: PoolFactory) -> None:
    pool = local_lambda([PROBE], idle_timeout=None, python="/nonexistent/python3")
    with pytest.raises(FileNotFoundError):
        pool.invoke("probe", {})
    assert not pool.containers()
    assert [r.reason for r in pool.retired] == ["failure"]


#: Seconds the recorder extension works after each INVOKE.
EXTENSION_WORK = 2.0


def test_the_caller_does_not_wait_for_extension_work(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    probe = replace(PROBE, layer=recorder_layer).with_environment(
        EVENTS_FILE=str(events_file), RECORDER_INVOKE_WORK=str(EXTENSION_WORK)
    )
    pool = local_lambda([probe], idle_timeout=None)
    pool.invoke("probe", {})
    started = time.monotonic()
    result = pool.invoke("probe", {})
    elapsed = time.monotonic() - started

    # The invoke phase lasted as long as the extension's work; the answer came
    # long before it ended. Both are read in this run and compared with each
    # other, with half the work as the margin: no figure of the machine's speed.
    assert elapsed >= EXTENSION_WORK
    assert result.duration_ms / 1000 < elapsed - EXTENSION_WORK / 2
    (container,) = pool.containers()
    assert container.frozen


def test_the_sandbox_looks_like_lambda(
    local_lambda: PoolFactory, recorder_layer: Layer, events_file: Path
) -> None:
    recorder_layer.python_dir.mkdir()
    probe = replace(PROBE, layer=recorder_layer, memory_mb=512).with_environment(
        PROBE_SETTING="from the function", RECORDER_EVENTS="SHUTDOWN", EVENTS_FILE=str(events_file)
    )
    pool = local_lambda([probe], idle_timeout=None)
    first, second = pool.invoke("probe", {"sleep": 0.3}), None
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(pool.invoke("probe", {"sleep": 0.3})))
    thread.start()
    second = pool.invoke("probe", {"sleep": 0.3})
    thread.join()
    answers = [first.json(), second.json(), results[0].json()]
    env = answers[0]["environment"]

    assert answers[0]["cwd"] == str(LIFECYCLE_DIR)
    assert env["LAMBDA_TASK_ROOT"] == str(LIFECYCLE_DIR)
    assert env["_HANDLER"] == "probe.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/probe"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(first.container_id)
    assert env["AWS_REGION"] == "us-east-1"
    assert env["PROBE_SETTING"] == "from the function"
    # /var/task, then /opt/python and its site-packages; nothing of the development environment's.
    here = "{}.{}".format(*sys.version_info[:2])
    assert env["PYTHONPATH"] == os.pathsep.join(
        map(str, [LIFECYCLE_DIR, *recorder_layer.python_paths(here)])
    )
    sys_path = answers[0]["sys_path"]
    assert sys_path.index(str(LIFECYCLE_DIR)) < sys_path.index(str(recorder_layer.python_dir))
    assert not [p for p in sys_path if "apps/test-stack" in p]
    # Each sandbox has its own Runtime API and its own /tmp.
    assert len({a["environment"]["AWS_LAMBDA_RUNTIME_API"] for a in answers}) == 2
    assert len({a["environment"]["TMPDIR"] for a in answers}) == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
