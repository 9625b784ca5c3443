"""Lambda's Runtime API (2018-06-01) and Extensions API (2020-01-01) for one container.

One :class:`RuntimeApi` serves one container on its own 127.0.0.1 port, so
each container has its own ``AWS_LAMBDA_RUNTIME_API``. The HTTP side is what
``awslambdaric`` and extensions talk to; the Python side (:meth:`deliver`,
:meth:`shut_down_extensions`, :meth:`wait_until`) is what the container uses
to drive the lifecycle. Every state change happens under one condition
variable, so the container can wait for "the runtime and every extension
are waiting for their next event" without polling.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

RUNTIME_PREFIX: Final = "/2018-06-01/runtime"
EXTENSION_PREFIX: Final = "/2020-01-01/extension"
EXTENSION_EVENTS: Final = frozenset({"INVOKE", "SHUTDOWN"})


@dataclass
class Invocation:
    """One event on its way to the runtime, and what the runtime answered."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    #: ``success`` or ``error`` once the runtime has answered.
    outcome: str | None = None
    response: bytes = b""
    #: ``Lambda-Runtime-Function-Error-Type`` of an error answer.
    error_type: str | None = None
    delivered_at: float | None = None
    answered_at: float | None = None


@dataclass
class ExtensionRecord:
    """An external extension as the Extensions API knows it."""

    identifier: str
    name: str
    events: frozenset[str]
    waiting: bool = False
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    #: (``init`` or ``exit``, its ``Lambda-Extension-Function-Error-Type``, the body's message)
    errors: list[tuple[str, str, str]] = field(default_factory=list)


class RuntimeApi:
    """The HTTP endpoints of one execution environment, and their shared state."""

    def __init__(self, *, function_name: str, function_version: str, handler: str) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.handler = handler
        self.changed = threading.Condition()
        #: The runtime has an ``invocation/next`` request open.
        self.runtime_waiting = False
        self.pending: Invocation | None = None
        self.current: Invocation | None = None
        self.init_error: dict[str, Any] | None = None
        self.init_error_type: str | None = None
        self.extensions: dict[str, ExtensionRecord] = {}
        self._released = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"runtime-api-{function_name}",
            daemon=True,
        )

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def close(self) -> None:
        """Stop the server; open ``next`` requests are closed unanswered."""
        self.release_waiters()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    # Driving the lifecycle ---------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` (evaluated under the lock) holds, or time out."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def deliver(self, invocation: Invocation) -> None:
        """Queue an event for the runtime and an INVOKE for each extension that asked."""
        with self.changed:
            self.pending = invocation
            for extension in self.extensions.values():
                if "INVOKE" in extension.events:
                    extension.queue.append(
                        {
                            "eventType": "INVOKE",
                            "deadlineMs": invocation.deadline_ms,
                            "requestId": invocation.request_id,
                            "invokedFunctionArn": invocation.function_arn,
                            "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id},
                        }
                    )
            self.changed.notify_all()

    def shut_down_extensions(self, reason: str, deadline_ms: int) -> list[str]:
        """Send SHUTDOWN to each extension registered for it; return their names."""
        told: list[str] = []
        with self.changed:
            for extension in self.extensions.values():
                if "SHUTDOWN" in extension.events:
                    extension.queue.append(
                        {
                            "eventType": "SHUTDOWN",
                            "shutdownReason": reason,
                            "deadlineMs": deadline_ms,
                        }
                    )
                    told.append(extension.name)
            self.changed.notify_all()
        return told

    def release_waiters(self) -> None:
        """Close every open ``next`` request without an answer (the environment is going)."""
        with self.changed:
            self._released = True
            self.changed.notify_all()

    def extension_init_error(self) -> tuple[str, str, str] | None:
        """(name, error type, message) of the first extension that reported an init error.

        Call under the lock. Lambda fails init when an extension posts
        ``init/error``, and so does the local runtime.
        """
        for extension in self.extensions.values():
            for kind, error_type, message in extension.errors:
                if kind == "init":
                    return extension.name, error_type, message
        return None

    def quiescent(self) -> bool:
        """The runtime and every extension wait for their next event (call under the lock)."""
        return (
            self.runtime_waiting
            and self.pending is None
            and all(e.waiting and not e.queue for e in self.extensions.values())
        )

    # What the HTTP handler calls ---------------------------------------------

    def _next_invocation(self) -> Invocation | None:
        with self.changed:
            self.runtime_waiting = True
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.pending is not None or self._released)
            self.runtime_waiting = False
            if self.pending is None:
                return None
            invocation, self.pending = self.pending, None
            invocation.delivered_at = time.monotonic()
            self.current = invocation
            self.changed.notify_all()
            return invocation

    def _answer(self, request_id: str, outcome: str, body: bytes, error_type: str | None) -> bool:
        with self.changed:
            invocation = self.current
            if invocation is None or invocation.request_id != request_id:
                return False
            invocation.outcome = outcome
            invocation.response = body
            invocation.error_type = error_type
            invocation.answered_at = time.monotonic()
            self.current = None
            self.changed.notify_all()
            return True

    def _init_failed(self, body: bytes, error_type: str | None) -> None:
        with self.changed:
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                parsed = {"errorMessage": body.decode("utf-8", "replace")}
            self.init_error = parsed if isinstance(parsed, dict) else {"errorMessage": str(parsed)}
            self.init_error_type = error_type or self.init_error.get("errorType")
            self.changed.notify_all()

    def _register(self, name: str, events: frozenset[str]) -> ExtensionRecord:
        with self.changed:
            record = ExtensionRecord(str(uuid.uuid4()), name, events)
            self.extensions[record.identifier] = record
            self.changed.notify_all()
            return record

    def _next_extension_event(self, record: ExtensionRecord) -> dict[str, Any] | None:
        with self.changed:
            record.waiting = True
            self.changed.notify_all()
            self.changed.wait_for(lambda: bool(record.queue) or self._released)
            record.waiting = False
            event = record.queue.popleft() if record.queue else None
            self.changed.notify_all()
            return event

    def _extension_error(
        self, record: ExtensionRecord, kind: str, error_type: str, body: bytes
    ) -> None:
        try:
            parsed: Any = json.loads(body or b"{}")
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        message = str(parsed.get("errorMessage", "")) if isinstance(parsed, dict) else str(parsed)
        with self.changed:
            record.errors.append((kind, error_type, message))
            self.changed.notify_all()


def _handler_class(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Without it, delayed ACKs add ~40 ms to every request on loopback.
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if self.path == f"{RUNTIME_PREFIX}/invocation/next":
                self._runtime_next()
            elif self.path == f"{EXTENSION_PREFIX}/event/next":
                record = self._extension()
                if record is not None:
                    self._extension_next(record)
            else:
                self._error(404, "InvalidRequest", f"no such endpoint: GET {self.path}")

        def do_POST(self) -> None:
            body = self._body()
            path = self.path
            if path.startswith(f"{RUNTIME_PREFIX}/invocation/"):
                request_id, _, verb = path[len(RUNTIME_PREFIX) + 12 :].partition("/")
                if verb in ("response", "error"):
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    outcome = "success" if verb == "response" else "error"
                    if api._answer(
                        request_id, outcome, body, error_type if verb == "error" else None
                    ):
                        self._json(202, {"status": "OK"})
                    else:
                        self._error(400, "InvalidRequestID", f"no open invocation {request_id!r}")
                    return
            elif path == f"{RUNTIME_PREFIX}/init/error":
                api._init_failed(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                self._json(202, {"status": "OK"})
                return
            elif path == f"{EXTENSION_PREFIX}/register":
                self._register(body)
                return
            elif path in (f"{EXTENSION_PREFIX}/init/error", f"{EXTENSION_PREFIX}/exit/error"):
                record = self._extension()
                if record is not None:
                    kind = path.rsplit("/", 2)[-2]
                    error_type = self.headers.get("Lambda-Extension-Function-Error-Type", "")
                    api._extension_error(record, kind, error_type, body)
                    self._json(202, {"status": "OK"})
                return
            self._error(404, "InvalidRequest", f"no such endpoint: POST {path}")

        def _runtime_next(self) -> None:
            invocation = api._next_invocation()
            if invocation is None:
                # The environment is gone: close without an answer.
                self.close_connection = True
                return
            self.send_response(200)
            headers = {
                # awslambdaric's native client crashes without a Content-Type.
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
                "Content-Length": str(len(invocation.payload)),
            }
            if invocation.client_context is not None:
                headers["Lambda-Runtime-Client-Context"] = invocation.client_context
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(invocation.payload)

        def _register(self, body: bytes) -> None:
            name = self.headers.get("Lambda-Extension-Name")
            if not name:
                self._error(400, "InvalidRequest", "the Lambda-Extension-Name header is missing")
                return
            try:
                events = frozenset(json.loads(body or b"{}").get("events", []))
            except (ValueError, AttributeError, TypeError):
                self._error(400, "InvalidRequest", 'the body must be {"events": [...]}')
                return
            unknown = events - EXTENSION_EVENTS
            if unknown:
                self._error(
                    400,
                    "InvalidEventType",
                    f"unknown events {sorted(unknown)}; use INVOKE and/or SHUTDOWN",
                )
                return
            record = api._register(name, events)
            payload = {
                "functionName": api.function_name,
                "functionVersion": api.function_version,
                "handler": api.handler,
            }
            self._json(200, payload, {"Lambda-Extension-Identifier": record.identifier})

        def _extension(self) -> ExtensionRecord | None:
            identifier = self.headers.get("Lambda-Extension-Identifier", "")
            record = api.extensions.get(identifier)
            if record is None:
                self._error(
                    403,
                    "Extension.UnknownExtensionIdentifier",
                    f"no extension registered as {identifier!r}",
                )
            return record

        def _extension_next(self, record: ExtensionRecord) -> None:
            event = api._next_extension_event(record)
            if event is None:
                self.close_connection = True
                return
            self._json(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, error_type: str, message: str) -> None:
            self._json(status, {"errorType": error_type, "errorMessage": message})

    return Handler
