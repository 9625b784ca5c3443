"""The canary's handler: known code whose executed lines the canary checks exactly."""

from __future__ import annotations

from typing import Any

# A sibling in the function's code root, not a module of this package.
from lambda_coverage_canary_probe import probe  # type: ignore[import-not-found]


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Add the odd numbers and subtract the even ones; answer with what the probe saw."""
    total = 0
    for number in event["numbers"]:
        if number % 2:
            total += number
        else:
            total -= number
    return {"total": total, **probe()}


def never_called() -> int:
    """Measured but never run: its body must not appear among the executed lines."""
    return 0
