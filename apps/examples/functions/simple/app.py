"""The simplest instrumented function: greet by name, count the characters.

Deployed with the zero-code handler (`coverage_wrapper.handler.handler`,
`COVERAGE_ORIGINAL_HANDLER=app.handler`), so module-level lines are measured
too. See ../decorator for the same function with `@coverage_handler`.
"""

from __future__ import annotations

from typing import Any

DEFAULT_NAME = "World"


def greeting(name: str) -> str:
    """Build the greeting for one name."""
    if not name.strip():
        raise ValueError("name must not be blank")
    return f"Hello, {name}!"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer an API-style event with a greeting."""
    name = event.get("name", DEFAULT_NAME)
    body = greeting(name)
    if event.get("shout"):
        body = body.upper()
    return {"statusCode": 200, "body": body, "length": len(body)}
