"""The async operation: tasks fanned out on an event loop, with a deadline."""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import BadRequest


async def _square(value: int, delay: float) -> int:
    await asyncio.sleep(delay)
    if value < 0:
        raise ValueError(f"negative input {value}")
    return value * value


async def _gather(values: list[int], delay: float, timeout: float) -> dict[str, Any]:
    tasks = [_square(v, delay) for v in values]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), timeout=timeout
        )
    except asyncio.TimeoutError:
        return {"completed": False, "reason": f"timed out after {timeout}s"}
    failures = [str(r) for r in results if isinstance(r, Exception)]
    squares = [r for r in results if not isinstance(r, BaseException)]
    return {"completed": True, "squares": squares, "failures": failures}


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    """Square every value concurrently; negative values fail one task, not all."""
    values = event.get("values", [1, 2, 3])
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise BadRequest("'values' must be a list of integers", field="values")
    delay = float(event.get("delay", 0))
    timeout = float(event.get("timeout", 1.0))
    return asyncio.run(_gather(values, delay, timeout))
