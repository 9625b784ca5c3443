"""The error test function: raise the error the event names.

``{"error_type": "value" | "type" | "key" | "runtime" | "custom"}`` raises
that error from a little real code, so tracebacks and error paths look like
a function's own; no ``error_type`` (or ``"none"``) succeeds.
"""

from __future__ import annotations

from typing import Any


class PaymentDeclinedError(Exception):
    """A domain error of the function's own, with a code for the caller."""

    def __init__(self, code: str, amount: float) -> None:
        super().__init__(f"payment of {amount:.2f} declined: {code}")
        self.code = code
        self.amount = amount


def _value_error(event: dict[str, Any]) -> Any:
    return int(event.get("quantity", "not-a-number"))


def _type_error(event: dict[str, Any]) -> Any:
    return event.get("price", "10") + 1


def _key_error(event: dict[str, Any]) -> Any:
    catalogue = {"apple": 1.0, "pear": 2.0}
    return catalogue[event.get("item", "durian")]


def _runtime_error(event: dict[str, Any]) -> Any:
    attempts = int(event.get("attempts", 3))
    for attempt in range(attempts):
        if attempt == attempts - 1:
            raise RuntimeError(f"gave up after {attempts} attempts")
    raise RuntimeError("no attempts allowed")


def _custom_error(event: dict[str, Any]) -> Any:
    amount = float(event.get("amount", 99.5))
    raise PaymentDeclinedError(str(event.get("code", "insufficient_funds")), amount)


RAISERS = {
    "value": _value_error,
    "type": _type_error,
    "key": _key_error,
    "runtime": _runtime_error,
    "custom": _custom_error,
}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Raise the named error, or succeed when none is named."""
    fields = event if isinstance(event, dict) else {}
    kind = fields.get("error_type", "none")
    if kind == "none":
        return {"statusCode": 200, "body": "no error requested"}
    raiser = RAISERS.get(kind)
    if raiser is None:
        raise ValueError(f"unknown error_type {kind!r}; use one of {', '.join(sorted(RAISERS))}")
    return {"statusCode": 200, "body": repr(raiser(fields))}
