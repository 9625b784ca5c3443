"""One execution environment: the runtime process, its extensions, and their lifecycle.

A :class:`Container` starts the layer's extensions, waits for them to
register, starts ``python -m awslambdaric <handler>`` with the task root as
its working directory, and waits until the runtime and every extension ask
for their next event (init done). Between invokes every process of the
container is stopped with SIGSTOP, as Lambda freezes the sandbox, and
continued with SIGCONT before the next event. Retiring follows Lambda's
shutdown: with an extension registered the runtime gets SIGTERM and a short
grace, then each extension gets SHUTDOWN, and whatever still runs at the
deadline is killed. Without extensions the runtime is simply killed.

POSIX only (process groups and job-control signals).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Final

from test_stack.functions import LambdaFunction
from test_stack.invocations import (
    ContainerState,
    InitFailure,
    InvokeResult,
    ShutdownReport,
    error_type_of,
    trace_id,
)
from test_stack.processes import (
    SandboxProcess,
    exit_text,
    is_stopped,
    python_version,
    signal_group,
)
from test_stack.runtime_api import Invocation, RuntimeApi

#: Lambda's limit for the init phase.
DEFAULT_INIT_TIMEOUT: Final = 10.0
#: How long the runtime has after SIGTERM before extensions are told (Lambda: 300 ms).
DEFAULT_RUNTIME_GRACE: Final = 0.3
#: The whole shutdown with external extensions (Lambda: 2 s).
DEFAULT_SHUTDOWN_DEADLINE: Final = 2.0
RUNTIME: Final = "runtime"


class Container:
    """One sandbox of one function."""

    def __init__(
        self,
        function: LambdaFunction,
        *,
        work_dir: Path,
        environment: Mapping[str, str] | None = None,
        python: str = sys.executable,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        runtime_grace: float = DEFAULT_RUNTIME_GRACE,
        shutdown_deadline: float = DEFAULT_SHUTDOWN_DEADLINE,
    ) -> None:
        self.function = function
        self.id = uuid.uuid4().hex[:12]
        self.layer = function.layer
        self.python = python
        self.init_timeout = init_timeout
        self.runtime_grace = runtime_grace
        self.shutdown_deadline = shutdown_deadline
        self.state = ContainerState.NEW
        self.frozen = False
        self.invocations = 0
        self.last_used = time.monotonic()
        self.init_duration_ms: float | None = None
        self.log_stream = f"{datetime.now(timezone.utc):%Y/%m/%d}/[{function.version}]{self.id}"
        self.tmp_dir = work_dir / "sandboxes" / self.id / "tmp"
        self.log_path = work_dir / "logs" / function.name / f"{self.id}.log"
        self.shutdown: ShutdownReport | None = None
        self._extra_environment = dict(environment or {})
        self._api = RuntimeApi(
            function_name=function.name, function_version=function.version, handler=function.handler
        )
        self._processes: list[SandboxProcess] = []
        self._pgid: int | None = None
        self._log: IO[bytes] | None = None
        self._retire_lock = threading.Lock()
        self._cold = True

    # Information -------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        """Process ids of the runtime and the extensions that are still running."""
        with self._api.changed:
            return [p.popen.pid for p in self._processes if p.alive]

    @property
    def extension_pids(self) -> list[int]:
        """Process ids of the extensions that are still running."""
        with self._api.changed:
            return [p.popen.pid for p in self._processes if p.alive and p.kind == "extension"]

    @property
    def extension_names(self) -> list[str]:
        """Names of the extensions that registered."""
        with self._api.changed:
            return [e.name for e in self._api.extensions.values()]

    def environment(self) -> dict[str, str]:
        """The environment every process of this container gets."""
        f = self.function
        python_path = [str(f.code_dir)]
        # The runtime's interpreter comes first on PATH, as /var/lang/bin does on
        # Lambda: a layer's extension written in Python runs with it.
        path = os.pathsep.join(
            [os.path.dirname(self.python), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]
        )
        if self.layer is not None:
            python_path += map(str, self.layer.python_paths(python_version(self.python)))
            path = f"{self.layer.bin_dir}{os.pathsep}{path}"
        env = {
            "PATH": path,
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "TMPDIR": str(self.tmp_dir),
            # Lambda's /tmp belongs to one sandbox; the wrapper spools there.
            "COVERAGE_SPOOL_DIR": str(self.tmp_dir / "lambda-coverage"),
            "AWS_DEFAULT_REGION": f.region,
            "PYTHONPATH": os.pathsep.join(python_path),
        }
        env.update(self._extra_environment)
        env.update(f.environment)
        env.update(
            {
                "_HANDLER": f.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python_version(self.python)}",
                "AWS_LAMBDA_FUNCTION_NAME": f.name,
                "AWS_LAMBDA_FUNCTION_VERSION": f.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(f.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{f.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
                "AWS_LAMBDA_RUNTIME_API": self._api.address,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "LAMBDA_TASK_ROOT": str(f.code_dir),
                "AWS_REGION": f.region,
            }
        )
        return env

    # Init ----------------------------------------------------------------------

    def start(self) -> None:
        """Run the init phase; raise :class:`InitFailure` if it fails (the container is gone)."""
        if self.state is not ContainerState.NEW:
            raise RuntimeError(f"container {self.id} was already started")
        started = time.monotonic()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._api.start()
        env = self.environment()
        try:
            self._start_extensions(env, started + self.init_timeout)
            self._spawn(
                RUNTIME,
                RUNTIME,
                [self.python, "-m", "awslambdaric", self.function.handler],
                env,
                self.function.code_dir,
            )
            self._await_init(started + self.init_timeout)
        except InitFailure:
            self.retire("failure")
            raise
        self.init_duration_ms = (time.monotonic() - started) * 1000
        self._freeze()
        self.state = ContainerState.IDLE
        self.last_used = time.monotonic()

    def _start_extensions(self, env: dict[str, str], deadline: float) -> None:
        executables = self.layer.extensions() if self.layer is not None else []
        for executable in executables:
            self._spawn(executable.name, "extension", [str(executable)], env, executable.parent)
        if not executables:
            return

        def registered_or_gone() -> bool:
            return (
                len(self._api.extensions) >= len(executables)
                or self._any_exited()
                or self._api.extension_init_error() is not None
            )

        if not self._api.wait_until(registered_or_gone, max(0.0, deadline - time.monotonic())):
            missing = {e.name for e in executables} - set(self.extension_names)
            raise InitFailure(
                "Extension.InitError",
                f"extensions did not register within {self.init_timeout:g}s: {sorted(missing)}",
            )
        self._raise_extension_init_error()
        gone = self._exited_names()
        if gone:
            raise InitFailure("Extension.Crash", f"extensions exited during init: {gone}")

    def _await_init(self, deadline: float) -> None:
        api = self._api

        def finished() -> bool:
            return (
                api.init_error is not None
                or api.extension_init_error() is not None
                or self._any_exited()
                or api.quiescent()
            )

        done = api.wait_until(finished, max(0.0, deadline - time.monotonic()))
        self._raise_extension_init_error()
        if api.init_error is not None:
            payload = dict(api.init_error)
            error_type = api.init_error_type or str(payload.get("errorType", "Runtime.Unknown"))
            raise InitFailure(error_type, str(payload.get("errorMessage", "")), payload)
        gone = self._exited_names()
        if gone:
            raise InitFailure(
                "Runtime.ExitError",
                f"{', '.join(gone)} exited during init: {exit_text(self._processes)}",
            )
        if not done:
            raise InitFailure(
                "Sandbox.Timedout", f"init did not finish within {self.init_timeout:g}s"
            )

    def _raise_extension_init_error(self) -> None:
        with self._api.changed:
            failed = self._api.extension_init_error()
        if failed is not None:
            name, error_type, message = failed
            raise InitFailure(
                error_type or "Extension.InitError",
                f"extension {name} reported an init error: {message or '(no message)'}",
            )

    # Invoke ----------------------------------------------------------------------

    def invoke(self, payload: bytes, *, request_id: str | None = None) -> InvokeResult:
        """Deliver one event, wait for the answer, and freeze the container again.

        The answer is taken the moment the runtime posts it; the container is
        ready for the next event (and frozen) once the runtime and every
        extension have asked for their next event. A timeout or a process
        that dies retires the container, as Lambda resets the sandbox.
        """
        if self.state is not ContainerState.IDLE:
            raise RuntimeError(f"container {self.id} is {self.state.value}, not idle")
        self.state = ContainerState.BUSY
        f = self.function
        started = time.monotonic()
        invocation = Invocation(
            request_id=request_id or str(uuid.uuid4()),
            payload=payload,
            deadline_ms=int(time.time() * 1000 + f.timeout * 1000),
            function_arn=f.arn,
            trace_id=trace_id(),
        )
        deadline = started + f.timeout
        init_ms, self._cold = (self.init_duration_ms if self._cold else None), False
        self._thaw()
        api = self._api
        api.deliver(invocation)
        api.wait_until(lambda: invocation.outcome is not None or self._any_exited(), f.timeout)
        if invocation.outcome is None:
            return self._failed_invoke(invocation, started, init_ms)
        answered = invocation.answered_at or time.monotonic()
        result = InvokeResult(
            function=f.name,
            request_id=invocation.request_id,
            container_id=self.id,
            payload=invocation.response,
            error_type=_error_type(invocation) if invocation.outcome == "error" else None,
            duration_ms=(answered - (invocation.delivered_at or started)) * 1000,
            init_duration_ms=init_ms,
        )
        settled = api.wait_until(
            lambda: api.quiescent() or self._any_exited(), max(0.0, deadline - time.monotonic())
        )
        settled_at = time.monotonic()
        self.invocations += 1
        if settled and not self._any_exited():
            self._freeze()
            self.state = ContainerState.IDLE
            self.last_used = time.monotonic()
        else:
            self.retire("failure" if self._any_exited() else "timeout")
            return result
        return replace(result, phase_ms=(settled_at - (invocation.delivered_at or started)) * 1000)

    def _failed_invoke(
        self, invocation: Invocation, started: float, init_ms: float | None
    ) -> InvokeResult:
        f = self.function
        if self._any_exited():
            error_type = "Runtime.ExitError"
            message = (
                f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                f"{exit_text(self._processes)}"
            )
            reason = "failure"
        else:
            error_type = "Sandbox.Timedout"
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            message = (
                f"{stamp} {invocation.request_id} Task timed out after {f.timeout:.2f} seconds"
            )
            reason = "timeout"
        self.invocations += 1
        self.retire(reason)
        return InvokeResult(
            function=f.name,
            request_id=invocation.request_id,
            container_id=self.id,
            payload=json.dumps({"errorType": error_type, "errorMessage": message}).encode(),
            error_type=error_type,
            duration_ms=(time.monotonic() - started) * 1000,
            init_duration_ms=init_ms,
        )

    # Shutdown --------------------------------------------------------------------

    def retire(self, reason: str = "spindown") -> ShutdownReport:
        """Shut the container down the way Lambda does; safe to call more than once."""
        with self._retire_lock:
            if self.shutdown is not None:
                return self.shutdown
            report = ShutdownReport(self.id, reason)
            began = time.monotonic()

            def step(what: str) -> None:
                report.steps.append((round(time.monotonic() - began, 4), what))

            self._thaw()
            runtime = self._process(RUNTIME)
            if self._api.extensions:
                if runtime is not None and runtime.alive:
                    runtime.popen.send_signal(signal.SIGTERM)
                    step("SIGTERM runtime")
                    # Its open `next` request stays open, as on Lambda: awslambdaric
                    # blocked there runs a Python SIGTERM handler only where it polls
                    # in a thread (Python 3.12+); elsewhere the default action or the
                    # kill after the grace ends it.
                    self._wait_exit([runtime], began + self.runtime_grace)
                self._kill_if_alive(runtime, step)
                left = self.shutdown_deadline - (time.monotonic() - began)
                deadline_ms = int((time.time() + left) * 1000)
                told = self._api.shut_down_extensions(reason, deadline_ms)
                for name in told:
                    step(f"SHUTDOWN {name}")
                waiting = [p for p in self._processes if p.kind == "extension" and p.name in told]
                self._wait_exit(waiting, began + self.shutdown_deadline)
            else:
                self._kill_if_alive(runtime, step)
            for process in self._processes:
                self._kill_if_alive(process, step)
            # Anything the function started itself shares the process group.
            self._signal_group(signal.SIGKILL)
            self._wait_exit(self._processes, time.monotonic() + 5.0)
            for process in self._processes:
                report.exit_codes[process.name] = process.exit_code
            self._api.close()
            if self._log is not None:
                self._log.close()
            shutil.rmtree(self.tmp_dir.parent, ignore_errors=True)
            self.state = ContainerState.RETIRED
            self.frozen = False
            self.shutdown = report
            return report

    def _kill_if_alive(self, process: SandboxProcess | None, step: Callable[[str], None]) -> None:
        if process is None or not process.alive:
            return
        try:
            process.popen.kill()
        except ProcessLookupError:
            return
        step(f"SIGKILL {process.name}")
        self._wait_exit([process], time.monotonic() + 5.0)

    # Processes -------------------------------------------------------------------

    def _spawn(self, name: str, kind: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # One process group per container: freezing and killing reach
            # every process of the sandbox, including ones the function starts.
            process_group=self._pgid or 0,
        )
        if self._pgid is None:
            self._pgid = popen.pid
        process = SandboxProcess(name, kind, popen)
        with self._api.changed:
            self._processes.append(process)
        threading.Thread(
            target=self._watch, args=(process,), name=f"watch-{name}-{popen.pid}", daemon=True
        ).start()

    def _watch(self, process: SandboxProcess) -> None:
        code = process.popen.wait()
        with self._api.changed:
            process.exit_code = code
            self._api.changed.notify_all()

    def _process(self, name: str) -> SandboxProcess | None:
        return next((p for p in self._processes if p.name == name), None)

    def _any_exited(self) -> bool:
        return any(not p.alive for p in self._processes)

    def _exited_names(self) -> list[str]:
        with self._api.changed:
            return [p.name for p in self._processes if not p.alive]

    def _wait_exit(self, processes: list[SandboxProcess], deadline: float) -> bool:
        return self._api.wait_until(
            lambda: all(not p.alive for p in processes), max(0.0, deadline - time.monotonic())
        )

    def _signal_group(self, sig: signal.Signals) -> None:
        signal_group(self._pgid, sig)

    def _freeze(self) -> None:
        self._signal_group(signal.SIGSTOP)
        self.frozen = True
        # SIGSTOP takes effect asynchronously; wait until the kernel shows it.
        limit = time.monotonic() + 1.0
        while time.monotonic() < limit and not all(is_stopped(pid) for pid in self.pids):
            time.sleep(0.001)

    def _thaw(self) -> None:
        if self.frozen:
            self._signal_group(signal.SIGCONT)
            self.frozen = False


def _error_type(invocation: Invocation) -> str:
    return invocation.error_type or error_type_of(invocation.response)
