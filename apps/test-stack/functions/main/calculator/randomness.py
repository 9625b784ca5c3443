"""The random operation: reproducible when the event carries a seed."""

from __future__ import annotations

import random
from typing import Any

from .errors import BadRequest

KINDS = ("integer", "choice", "sample")


def draw(event: dict[str, Any]) -> dict[str, Any]:
    """Draw a random value of the requested kind."""
    seed = event.get("seed")
    generator = random.Random(seed) if seed is not None else random.Random()
    kind = event.get("kind", "integer")
    if kind == "integer":
        low, high = int(event.get("low", 1)), int(event.get("high", 100))
        if low > high:
            raise BadRequest(f"low ({low}) is above high ({high})", field="low")
        value: Any = generator.randint(low, high)
        parity = "even" if value % 2 == 0 else "odd"
        return {"kind": kind, "value": value, "parity": parity}
    if kind in ("choice", "sample"):
        options = event.get("options")
        if not isinstance(options, list) or not options:
            raise BadRequest("'options' must be a non-empty list", field="options")
        if kind == "choice":
            return {"kind": kind, "value": generator.choice(options)}
        size = int(event.get("size", 2))
        if size > len(options):
            raise BadRequest(f"cannot sample {size} of {len(options)} options", field="size")
        return {"kind": kind, "value": generator.sample(options, size)}
    raise BadRequest(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", field="kind")
