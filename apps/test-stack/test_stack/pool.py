"""Serve functions the way Lambda scales them: warm reuse, scale-out, idle retirement.

:class:`LocalLambda` holds the containers of a set of functions. An invoke
takes an idle warm container of that function when there is one (the most
recently used, as Lambda tends to), starts a new one when all are busy and
the function is under its concurrency limit, and otherwise waits for one
to come free. Containers idle for longer than ``idle_timeout`` are retired
by a background reaper; :meth:`LocalLambda.retire` retires on request and
:meth:`LocalLambda.close` retires everything, so nothing is left running.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from test_stack.container import (
    DEFAULT_INIT_TIMEOUT,
    DEFAULT_RUNTIME_GRACE,
    DEFAULT_SHUTDOWN_DEADLINE,
    Container,
)
from test_stack.functions import LambdaFunction
from test_stack.invocations import ContainerState, InitFailure, InvokeResult, ShutdownReport

DEFAULT_MAX_CONCURRENCY: Final = 10
#: Lambda keeps idle environments for minutes; locally a minute is plenty.
DEFAULT_IDLE_TIMEOUT: Final = 60.0


class PoolClosed(RuntimeError):
    """The pool was closed; it serves no more invokes."""


class LocalLambda:
    """A local Lambda service for a fixed set of functions."""

    def __init__(
        self,
        functions: Iterable[LambdaFunction],
        *,
        work_dir: Path | None = None,
        environment: Mapping[str, str] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        runtime_grace: float = DEFAULT_RUNTIME_GRACE,
        shutdown_deadline: float = DEFAULT_SHUTDOWN_DEADLINE,
        python: str = sys.executable,
    ) -> None:
        """Serve ``functions``.

        ``environment`` is given to every container under each function's own
        (S3 endpoint, credentials, ...). ``work_dir`` holds each sandbox's
        ``/tmp`` and the containers' logs; by default a temporary folder that
        :meth:`close` removes. ``max_concurrency`` caps the containers per
        function; ``idle_timeout=None`` keeps idle containers until closed.
        """
        self.functions: dict[str, LambdaFunction] = {}
        for function in functions:
            if function.name in self.functions:
                raise ValueError(f"two functions are called {function.name!r}; names must differ")
            self.functions[function.name] = function
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency} must be at least 1")
        self._own_work_dir = work_dir is None
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="local-lambda-")) if work_dir is None else work_dir
        )
        self.environment = dict(environment or {})
        self.max_concurrency = max_concurrency
        self.idle_timeout = idle_timeout
        self._container_options: dict[str, Any] = {
            "init_timeout": init_timeout,
            "runtime_grace": runtime_grace,
            "shutdown_deadline": shutdown_deadline,
            "python": python,
        }
        self._containers: dict[str, list[Container]] = {name: [] for name in self.functions}
        self._leased: set[str] = set()
        #: Containers that take no new invoke: they are retired once free.
        self._draining: set[str] = set()
        self._changed = threading.Condition()
        self._closed = False
        self.retired: list[ShutdownReport] = []
        self._reaper: threading.Thread | None = None
        if idle_timeout is not None:
            self._reaper = threading.Thread(
                target=self._reap, name="local-lambda-reaper", daemon=True
            )
            self._reaper.start()

    def __enter__(self) -> LocalLambda:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Invoke ----------------------------------------------------------------------

    def invoke(
        self, function_name: str, event: Any = None, *, payload: bytes | None = None
    ) -> InvokeResult:
        """Invoke a function synchronously (``RequestResponse``) with ``event`` as JSON."""
        body = payload if payload is not None else json.dumps(event).encode()
        container = self._acquire(self._function(function_name))
        try:
            if container.state is ContainerState.NEW:
                try:
                    container.start()
                except InitFailure as failure:
                    self._record_retired(container)
                    return self._init_failed(container, failure)
                except BaseException:
                    # Could not even start (e.g. the interpreter is missing): leave nothing behind.
                    container.retire("failure")
                    self._record_retired(container)
                    raise
            result = container.invoke(body)
            if container.state is ContainerState.RETIRED:
                self._record_retired(container)
            return result
        finally:
            self._release(container)

    def _init_failed(self, container: Container, failure: InitFailure) -> InvokeResult:
        return InvokeResult(
            function=container.function.name,
            request_id=str(uuid.uuid4()),
            container_id=container.id,
            payload=json.dumps(failure.payload).encode(),
            error_type=failure.error_type,
            duration_ms=0.0,
            init_duration_ms=None,
        )

    def _function(self, name: str) -> LambdaFunction:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(
                f"no function {name!r} in this pool; it serves: {', '.join(self.functions)}"
            ) from None

    def _acquire(self, function: LambdaFunction) -> Container:
        with self._changed:
            while True:
                if self._closed:
                    raise PoolClosed("the local Lambda pool is closed")
                containers = self._containers[function.name]
                idle = [
                    c
                    for c in containers
                    if c.state is ContainerState.IDLE
                    and c.id not in self._leased
                    and c.id not in self._draining
                ]
                if idle:
                    chosen = max(idle, key=lambda c: c.last_used)
                    self._leased.add(chosen.id)
                    return chosen
                live = [c for c in containers if c.state is not ContainerState.RETIRED]
                if len(live) < self.max_concurrency:
                    container = Container(
                        function,
                        work_dir=self.work_dir,
                        environment=self.environment,
                        **self._container_options,
                    )
                    containers.append(container)
                    self._leased.add(container.id)
                    return container
                self._changed.wait()

    def _release(self, container: Container) -> None:
        with self._changed:
            self._leased.discard(container.id)
            if container.state is ContainerState.RETIRED:
                containers = self._containers[container.function.name]
                if container in containers:
                    containers.remove(container)
            self._changed.notify_all()

    def _record_retired(self, container: Container) -> None:
        if container.shutdown is not None:
            with self._changed:
                self.retired.append(container.shutdown)

    # Containers ------------------------------------------------------------------

    def containers(self, function_name: str | None = None) -> list[Container]:
        """The live containers (of one function, or all)."""
        with self._changed:
            names = [function_name] if function_name else list(self._containers)
            return [
                c
                for name in names
                for c in self._containers[name]
                if c.state is not ContainerState.RETIRED
            ]

    def retire(
        self,
        function_name: str | None = None,
        *,
        idle_for: float = 0.0,
        reason: str = "spindown",
    ) -> list[ShutdownReport]:
        """Retire the idle containers (of one function, or all) idle for ``idle_for`` s."""
        now = time.monotonic()
        with self._changed:
            names = [function_name] if function_name else list(self._containers)
            chosen = [
                c
                for name in names
                for c in self._containers[name]
                if c.state in (ContainerState.IDLE, ContainerState.NEW)
                and c.id not in self._leased
                and now - c.last_used >= idle_for
            ]
            self._leased.update(c.id for c in chosen)
        reports = []
        for container in chosen:
            try:
                reports.append(container.retire(reason))
            finally:
                self._record_retired(container)
                self._release(container)
        return reports

    def retire_one(
        self, function_name: str, *, reason: str = "spindown", timeout: float | None = None
    ) -> ShutdownReport | None:
        """Retire a function's least recently used container as soon as it is free.

        From the call on, no new invoke goes to it (as Lambda stops routing
        events to a sandbox it shuts down): an invoke that needs a container
        takes another or starts one. Returns ``None`` when the function has no
        live container, or when it was still busy after ``timeout`` seconds.
        """
        name = self._function(function_name).name
        with self._changed:
            live = [
                c
                for c in self._containers[name]
                if c.state is not ContainerState.RETIRED and c.id not in self._draining
            ]
            if not live:
                return None
            chosen = min(live, key=lambda c: c.last_used)
            self._draining.add(chosen.id)
            free = self._changed.wait_for(lambda: chosen.id not in self._leased, timeout)
            if not free or chosen.state is ContainerState.RETIRED:
                self._draining.discard(chosen.id)
                return None
            self._leased.add(chosen.id)
        try:
            return chosen.retire(reason)
        finally:
            self._record_retired(chosen)
            with self._changed:
                self._draining.discard(chosen.id)
            self._release(chosen)

    def _reap(self) -> None:
        assert self.idle_timeout is not None
        interval = min(1.0, self.idle_timeout / 4)
        while True:
            with self._changed:
                if self._changed.wait_for(lambda: self._closed, interval):
                    return
            self.retire(idle_for=self.idle_timeout)

    def close(self) -> None:
        """Wait for running invokes, retire every container, remove the temporary work dir."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            self._changed.wait_for(lambda: not self._leased)
        if self._reaper is not None:
            self._reaper.join()
        self.retire()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
