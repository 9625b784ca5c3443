"""Route an event to one calculator operation and answer like an API.

An event is either the operation's fields directly (``{"operation": "add",
"numbers": [1, 2]}``) or an API Gateway proxy event whose ``body`` holds them
as JSON. A bad request is a 400 answer; anything else that goes wrong is an
error of the function (500 from API Gateway, a FunctionError from Invoke).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .arithmetic import add, divide, multiply, numbers_from
from .concurrency import fan_out
from .errors import BadRequest
from .health import health
from .pipeline import run_pipeline
from .randomness import draw

Operation = Callable[[dict[str, Any], Any], Any]

OPERATIONS: dict[str, Operation] = {
    "add": lambda event, _: add(numbers_from(event.get("numbers"))),
    "multiply": lambda event, _: multiply(numbers_from(event.get("numbers"))),
    "divide": lambda event, _: divide(
        numbers_from(event.get("numbers"), minimum=2), integer=bool(event.get("integer"))
    ),
    "random": lambda event, _: draw(event),
    "health": lambda _, context: health(context),
    "complex": lambda event, _: run_pipeline(event),
    "async": lambda event, _: fan_out(event),
}


def default(event: dict[str, Any]) -> dict[str, Any]:
    """What an event without a known operation gets: the menu."""
    return {"operations": sorted(OPERATIONS), "received": sorted(event)}


def parse(event: Any) -> dict[str, Any]:
    """The request fields, from a direct event or an API Gateway body."""
    if not isinstance(event, dict):
        raise BadRequest("the event must be a JSON object")
    if "body" not in event:
        return event
    body = event["body"]
    if body is None:
        return {}
    try:
        fields = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc.msg}") from None
    if not isinstance(fields, dict):
        raise BadRequest("the body must be a JSON object")
    return fields


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy answer."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
    }


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The function's entry point."""
    started = time.perf_counter()
    try:
        fields = parse(event)
        name = fields.get("operation", "default")
        operation = OPERATIONS.get(name)
        result = default(fields) if operation is None else operation(fields, context)
    except BadRequest as exc:
        problem: dict[str, Any] = {"error": str(exc)}
        if exc.field is not None:
            problem["field"] = exc.field
        return respond(400, problem)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return respond(200, {"operation": name, "result": result, "elapsed_ms": elapsed_ms})
