"""The complex operation: a value pushed through a list of steps."""

from __future__ import annotations

from typing import Any

from .arithmetic import Number, add, divide, multiply
from .errors import BadRequest

MAX_STEPS = 20


def run_pipeline(event: dict[str, Any]) -> dict[str, Any]:
    """Apply each step (``add``/``multiply``/``divide``/``power``/``clamp``) in order."""
    value = event.get("start", 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("'start' must be a number", field="start")
    steps = event.get("steps", [])
    if not isinstance(steps, list):
        raise BadRequest("'steps' must be a list", field="steps")
    if len(steps) > MAX_STEPS:
        raise BadRequest(f"at most {MAX_STEPS} steps", field="steps")
    trace: list[Number] = [value]
    for index, step in enumerate(steps):
        value = _apply(value, step, index)
        trace.append(value)
    return {"result": value, "trace": trace, "steps": len(steps)}


def _apply(value: Number, step: Any, index: int) -> Number:
    if not isinstance(step, dict) or "op" not in step:
        raise BadRequest(f"steps[{index}] must be an object with an 'op'", field="steps")
    op, operand = step["op"], step.get("value", 0)
    if op == "add":
        return add([value, operand])
    if op == "multiply":
        return multiply([value, operand])
    if op == "divide":
        return divide([value, operand])
    if op == "power":
        if operand < 0 and value == 0:
            raise BadRequest(f"steps[{index}]: zero to a negative power", field="steps")
        result: Number = value**operand
        return result
    if op == "clamp":
        low, high = step.get("low", value), step.get("high", value)
        if low > high:
            raise BadRequest(f"steps[{index}]: low is above high", field="steps")
        clamped: Number = max(low, min(high, value))
        return clamped
    raise BadRequest(f"steps[{index}]: unknown op {op!r}", field="steps")
