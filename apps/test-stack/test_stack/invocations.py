"""What a local container reports: its state, an invoke's result, an init failure, a shutdown."""

from __future__ import annotations

import enum
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class ContainerState(enum.Enum):
    """Where a container is in its life."""

    NEW = "new"
    IDLE = "idle"
    BUSY = "busy"
    RETIRED = "retired"


class InitFailure(Exception):
    """The container could not finish init; Lambda answers the invoke with this error."""

    def __init__(self, error_type: str, message: str, payload: dict[str, Any] | None = None):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.payload = payload or {"errorType": error_type, "errorMessage": message}


@dataclass(frozen=True)
class InvokeResult:
    """What an Invoke call returns, plus where and how long it ran."""

    function: str
    request_id: str
    container_id: str
    payload: bytes
    #: The ``errorType`` of a function error (``None`` on success).
    error_type: str | None
    #: From the runtime's answer until the event was delivered, in milliseconds.
    duration_ms: float
    #: Set on the invoke that started the container (a cold start).
    init_duration_ms: float | None = None
    #: From the event's delivery until the runtime and every extension asked
    #: for their next event: the invoke phase, during which the sandbox takes
    #: no other event (None when it never ended: the container was retired).
    phase_ms: float | None = None

    @property
    def ok(self) -> bool:
        """No function error."""
        return self.error_type is None

    @property
    def function_error(self) -> str | None:
        """``Unhandled`` for an error, as in Invoke's ``X-Amz-Function-Error``."""
        return None if self.ok else "Unhandled"

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload) if self.payload else None


@dataclass
class ShutdownReport:
    """What happened while a container was retired, in order."""

    container_id: str
    reason: str
    #: (seconds since the shutdown began, what happened)
    steps: list[tuple[float, str]] = field(default_factory=list)
    #: Exit code per process name (negative: killed by that signal).
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def actions(self) -> list[str]:
        """The steps without their times."""
        return [what for _, what in self.steps]


def error_type_of(payload: bytes) -> str:
    """The ``errorType`` of a function error's payload (``Unhandled`` when it names none)."""
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        return "Unhandled"
    return str(parsed.get("errorType", "Unhandled")) if isinstance(parsed, dict) else "Unhandled"


def trace_id() -> str:
    """A fresh X-Ray trace header, as Lambda passes one with every event."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"
