"""The test stack's report reads a data file's function through the key contract."""

from __future__ import annotations

from test_stack.report import function_of

CUSTOM = "{prefix}{yyyy}/{function}/{run_id}/{container}.{pid}.{seq}.coverage"


def test_function_of_a_key_in_the_default_layout() -> None:
    key = "coverage/2026/11/25/orders/LATEST/c1-7-000001.coverage"
    assert function_of(key, {}) == "orders"
    assert function_of("deep/er/" + key, {}) == "orders"


def test_function_of_a_key_in_another_layout_and_from_metadata() -> None:
    key = "raw/2026/billing/run-3/c1.7.000001.coverage"
    assert function_of(key, {}, CUSTOM) == "billing"
    # The default layout does not fit that key: it names no function.
    assert function_of(key, {}) == ""
    assert function_of(key, {"function": "from-metadata"}) == "from-metadata"
