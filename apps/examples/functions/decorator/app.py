"""The simple function with ``@coverage_handler``: deployed with ``coverage_mode="decorator"``.

The handler setting stays ``app.handler``. Measurement starts when the
decorated handler is first called, so the module-level lines that ran
during init (imports, ``def`` statements) are not measured: zero-code mode
(../simple) sees those too.
"""

from __future__ import annotations

from typing import Any

from coverage_wrapper import coverage_handler

DEFAULT_NAME = "World"


def greeting(name: str) -> str:
    """Build the greeting for one name."""
    if not name.strip():
        raise ValueError("name must not be blank")
    return f"Hello, {name}!"


@coverage_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer an API-style event with a greeting."""
    body = greeting(event.get("name", DEFAULT_NAME))
    return {"statusCode": 200, "body": body, "length": len(body)}
