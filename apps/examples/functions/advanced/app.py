"""Sampling and environment-based enabling: configured in the stack, no code for either.

Deployed in zero-code mode with ``sample_rate=0.1`` (one invocation in ten is
measured: enough coverage for a busy function at a tenth of the cost) and
``coverage_enabled=(stage != "prod")``: the production stage gets a plain
function, without the layer, the settings or the write permission.
"""

from __future__ import annotations

from typing import Any

TIERS = {"gold": 20, "silver": 10}


def discount_percent(tier: str | None, items: int) -> int:
    """The discount for a customer tier and basket size."""
    percent = TIERS.get(tier or "", 0)
    if items >= 5:
        percent += 5
    return min(percent, 25)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Quote a discount."""
    items = int(event.get("items", 1))
    return {"statusCode": 200, "discount": discount_percent(event.get("tier"), items)}
