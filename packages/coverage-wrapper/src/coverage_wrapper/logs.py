"""Structured logs: one JSON object per line on the ``coverage_wrapper`` logger.

The wrapper owns only its own logger. It never adds handlers to, or changes
the level of, the root logger, so it can live beside Powertools' Logger or any
logging setup of the function. Our lines do not propagate to the root logger:
Lambda already ships whatever the process writes to stdout.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, TextIO

from coverage_wrapper.constants import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)

#: The request id of the invocation being served, added to every line.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coverage_wrapper_request_id", default=None
)

_HANDLER_MARK = "_coverage_wrapper_json_handler"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, message, request id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            line["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error_type"] = type(exc).__name__
            line["error"] = str(exc)
        return json.dumps(line, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time of each line.

    Runtimes and test runners replace ``sys.stdout``; a stream captured once
    would go on writing to a closed or stale one.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(level: str) -> None:
    """Attach the JSON handler to our logger once and set its level."""
    logger.setLevel(level)
    logger.propagate = False
    if any(getattr(handler, _HANDLER_MARK, False) for handler in logger.handlers):
        return
    handler = _StdoutHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)


def log(level: int, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields``; never raises."""
    try:
        if logger.isEnabledFor(level):
            logger.log(level, message, extra={"fields": fields})
    except Exception:  # noqa: BLE001 - logging must never break the function
        return
