"""add, multiply and divide over a list of numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import BadRequest

Number = int | float


def numbers_from(raw: object, *, minimum: int = 1) -> list[Number]:
    """Validate the ``numbers`` field: a list of at least ``minimum`` numbers."""
    if not isinstance(raw, list):
        raise BadRequest("'numbers' must be a list of numbers", field="numbers")
    if len(raw) < minimum:
        raise BadRequest(f"'numbers' needs at least {minimum} values", field="numbers")
    values: list[Number] = []
    for position, item in enumerate(raw):
        # bool is an int subclass, but true + true = 2 is never what a caller meant.
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise BadRequest(f"numbers[{position}] is not a number: {item!r}", field="numbers")
        if isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f"numbers[{position}] is not finite", field="numbers")
        values.append(item)
    return values


def add(values: Sequence[Number]) -> Number:
    """The sum; integers stay integers."""
    total: Number = 0
    for value in values:
        total += value
    return total


def multiply(values: Sequence[Number]) -> Number:
    """The product, stopping early at a zero factor."""
    product: Number = 1
    for value in values:
        if value == 0:
            return 0
        product *= value
    return product


def divide(values: Sequence[Number], *, integer: bool = False) -> Number:
    """The first value divided by each of the others in turn."""
    result: Number = values[0]
    for divisor in values[1:]:
        if divisor == 0:
            raise BadRequest("division by zero", field="numbers")
        result = result // divisor if integer else result / divisor
    if not integer and isinstance(result, float) and result.is_integer():
        return int(result)
    return result
