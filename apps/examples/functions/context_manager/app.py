"""Measure one block only: ``with CoverageContext():`` around the pricing rules.

Parsing and validation run unmeasured; the pricing code, the part whose
coverage the team tracks, runs inside the context. Deployed with
``coverage_mode="decorator"`` (the handler is left alone; the layer supplies
``coverage_wrapper``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coverage_wrapper import CoverageContext

BULK_THRESHOLD = 10
BULK_DISCOUNT = Decimal("0.10")


@dataclass(frozen=True)
class Line:
    """One order line."""

    sku: str
    quantity: int
    unit_price: Decimal


def parse(event: dict[str, Any]) -> list[Line]:
    """The order lines of ``event``; a clear error for a malformed one."""
    lines = []
    for raw in event.get("lines", []):
        quantity = int(raw["quantity"])
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity} for {raw['sku']}")
        lines.append(Line(str(raw["sku"]), quantity, Decimal(str(raw["unit_price"]))))
    return lines


def price(lines: list[Line]) -> Decimal:
    """The order's total: a bulk discount per line from ``BULK_THRESHOLD`` items."""
    total = Decimal(0)
    for line in lines:
        amount = line.unit_price * line.quantity
        if line.quantity >= BULK_THRESHOLD:
            amount -= amount * BULK_DISCOUNT
        total += amount
    return total.quantize(Decimal("0.01"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Price an order; only :func:`price` is measured."""
    lines = parse(event)
    with CoverageContext(context=context):
        total = price(lines)
    return {"statusCode": 200, "total": str(total), "lines": len(lines)}
