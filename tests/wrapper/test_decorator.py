"""``@coverage_handler``: the API shape and exactly what it measures."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler
from tests.wrapper.conftest import (
    FUNCTION_NAME,
    lambda_context,
    union_arcs,
    union_lines,
    uploads,
    write_module,
)
from tests.wrapper.reference import reference_measurement
from tests.wrapper.sample_functions import (
    ORDERS,
    ORDERS_BIG_ORDER_LINES,
    ORDERS_SMALL_ORDER_LINES,
)


def test_bare_decorator_keeps_name_docstring_and_signature(task_root: Path) -> None:
    def handler(event: dict[str, Any], context: Any, *, extra: int = 1) -> dict[str, Any]:
        """Handle an event."""
        return {"event": event, "extra": extra}

    wrapped = coverage_handler(handler)
    assert wrapped.__name__ == "handler"
    assert wrapped.__doc__ == "Handle an event."
    assert inspect.signature(wrapped) == inspect.signature(handler)
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]


def test_decorator_with_options_keeps_signature(task_root: Path) -> None:
    @coverage_handler(branch=False, sample_rate=1.0)
    def handler(event: dict[str, Any], context: Any) -> str:
        """Doc."""
        return "ok"

    assert handler.__name__ == "handler"
    assert list(inspect.signature(handler).parameters) == ["event", "context"]
    assert handler({}, lambda_context()) == "ok"


def test_unknown_option_is_a_type_error_naming_it(task_root: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['bucket'\]"):
        coverage_handler(bucket="x")  # type: ignore[call-overload]


def test_async_handler_stays_a_coroutine_and_is_measured(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(
        task_root,
        "async_app.py",
        "import asyncio\n"
        "\n"
        "async def handler(event, context):\n"
        "    await asyncio.sleep(0)\n"
        "    if event.get('double'):\n"
        "        return event['n'] * 2\n"
        "    return event['n']\n",
    )
    import async_app  # type: ignore[import-not-found]

    wrapped = coverage_handler(async_app.handler)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped({"n": 21, "double": True}, lambda_context())) == 42
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"async_app.py": {4, 5, 6}}


def test_decorator_measures_exactly_the_lines_that_ran(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "orders.py", ORDERS)
    import orders  # type: ignore[import-not-found]

    handler = coverage_handler(orders.handler)
    events = [{"prices": [10, 20]}]
    assert handler(events[0], lambda_context()) == {"total": 30, "body": '{"prices": [10, 20]}'}

    found = uploads(s3, bucket, tmp_path)
    assert len(found) == 1
    # Module-level lines ran at import, before the decorator could see them.
    assert union_lines(found) == {"orders.py": ORDERS_SMALL_ORDER_LINES}
    ref_lines, ref_arcs = reference_measurement(
        task_root, "orders.handler", events, measure_import=False
    )
    assert union_lines(found) == ref_lines
    assert union_arcs(found) == ref_arcs
    assert found[0].has_arcs
    assert found[0].contexts == {f"{FUNCTION_NAME}@$LATEST|invocation"}


def test_data_accumulates_across_warm_invocations(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "orders.py", ORDERS)
    import orders

    handler = coverage_handler(orders.handler)
    handler({"prices": [10, 20]}, lambda_context("a"))
    handler({"prices": [100, 20]}, lambda_context("b"))

    found = uploads(s3, bucket, tmp_path)
    assert len(found) == 2
    # Each snapshot holds everything the process measured so far.
    assert found[0].lines == {"orders.py": ORDERS_SMALL_ORDER_LINES}
    assert found[1].lines == {"orders.py": ORDERS_BIG_ORDER_LINES}
    assert found[0].key.endswith("-000001.coverage")
    assert found[1].key.endswith("-000002.coverage")


def test_branch_false_records_lines_only(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_BRANCH_COVERAGE", "false")
    write_module(task_root, "orders.py", ORDERS)
    import orders

    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)
    assert not upload.has_arcs
    assert upload.lines == {"orders.py": ORDERS_SMALL_ORDER_LINES}
    assert upload.metadata["branch"] == "false"


def test_explicit_option_wins_over_environment(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_BRANCH_COVERAGE", "false")
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "from-env/")
    write_module(task_root, "orders.py", ORDERS)
    import orders

    handler = coverage_handler(branch=True, s3_prefix="explicit")(orders.handler)
    handler({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)
    assert upload.has_arcs
    assert upload.key.startswith("explicit/")


def test_sample_rate_zero_measures_nothing_and_uploads_nothing(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "orders.py", ORDERS)
    import orders

    handler = coverage_handler(sample_rate=0.0)(orders.handler)
    assert handler({"prices": [1, 2]}, lambda_context()) == {
        "total": 3,
        "body": '{"prices": [1, 2]}',
    }
    assert uploads(s3, bucket, tmp_path) == []
