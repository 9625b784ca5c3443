"""The simple test function: echo a message, optionally reversed or repeated."""

from __future__ import annotations

from typing import Any

MAX_REPEAT = 5


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer with the event's message, transformed as asked."""
    fields = event if isinstance(event, dict) else {}
    message = str(fields.get("message", "hello"))
    if fields.get("reverse"):
        message = message[::-1]
    repeat = fields.get("repeat", 1)
    if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        return {"statusCode": 400, "body": f"repeat must be 1..{MAX_REPEAT}"}
    return {
        "statusCode": 200,
        "body": " ".join([message] * repeat),
        "request_id": getattr(context, "aws_request_id", None),
    }
