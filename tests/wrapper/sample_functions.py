"""Function code the wrapper's tests deploy into a temporary task root.

Line numbers matter: the tests name the exact lines that must be measured.
"""

from __future__ import annotations

ORDERS = '''\
"""An order service used by the wrapper's tests."""

import json

DISCOUNT_THRESHOLD = 100


def total(prices):
    amount = sum(prices)
    if amount > DISCOUNT_THRESHOLD:
        amount = amount * 0.9
    return round(amount, 2)


def handler(event, context):
    if "prices" not in event:
        raise KeyError("prices")
    return {"total": total(event["prices"]), "body": json.dumps(event)}
'''

#: Lines run at import: docstring, import, constant, the two ``def`` lines.
ORDERS_IMPORT_LINES = {1, 3, 5, 8, 15}
#: Lines run by ``handler({"prices": [10, 20]}, ...)``.
ORDERS_SMALL_ORDER_LINES = {9, 10, 12, 16, 18}
#: Lines run by ``handler({"prices": [100, 20]}, ...)``: the discount too.
ORDERS_BIG_ORDER_LINES = {9, 10, 11, 12, 16, 18}

FAULTY = """\
def handler(event, context):
    if event.get("fail"):
        raise ValueError(f"bad order {event['fail']}")
    return {"ok": event.get("n", 0), "items": [1, 2, 3]}
"""
