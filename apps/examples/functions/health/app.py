"""A function behind API Gateway with a health route: ``GET /health`` reports on coverage.

``health_check_handler()`` says whether coverage is on, what is
misconfigured, and how the last upload went; it never returns secrets or
the environment. Deployed with ``coverage_mode="decorator"``.
"""

from __future__ import annotations

import json
from typing import Any

from coverage_wrapper import coverage_handler, health_check_handler


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy response."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


@coverage_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route an API Gateway proxy event."""
    path = event.get("path", "/")
    if path == "/health":
        status = health_check_handler()
        return respond(200 if status.get("status") == "healthy" else 503, status)
    if path == "/hello":
        name = (event.get("queryStringParameters") or {}).get("name", "World")
        return respond(200, {"message": f"Hello, {name}!"})
    return respond(404, {"message": f"no route for {path}"})
