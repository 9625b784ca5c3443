"""Zero-code mode: ``coverage_wrapper.handler.handler`` with ``COVERAGE_ORIGINAL_HANDLER``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coverage_wrapper.errors import HandlerConfigurationError
from coverage_wrapper.handler_loader import parse_handler
from tests.wrapper.conftest import lambda_context, union_arcs, union_lines, uploads, write_module
from tests.wrapper.reference import reference_measurement
from tests.wrapper.sample_functions import (
    ORDERS,
    ORDERS_BIG_ORDER_LINES,
    ORDERS_IMPORT_LINES,
    ORDERS_SMALL_ORDER_LINES,
)


def load_zero_code(monkeypatch: pytest.MonkeyPatch, original: str) -> ModuleType:
    """Import the zero-code handler module afresh, as a new container's init does."""
    monkeypatch.setenv("COVERAGE_ORIGINAL_HANDLER", original)
    sys.modules.pop("coverage_wrapper.handler", None)
    return importlib.import_module("coverage_wrapper.handler")


def test_module_level_lines_are_measured(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(task_root, "orders.py", ORDERS)
    entry = load_zero_code(monkeypatch, "orders.handler")
    events = [{"prices": [10, 20]}, {"prices": [100, 20]}]
    results = [entry.handler(event, lambda_context(f"r{i}")) for i, event in enumerate(events)]
    assert results == [
        {"total": 30, "body": '{"prices": [10, 20]}'},
        {"total": 108.0, "body": '{"prices": [100, 20]}'},
    ]

    found = uploads(s3, bucket, tmp_path)
    expected = ORDERS_IMPORT_LINES | ORDERS_SMALL_ORDER_LINES | ORDERS_BIG_ORDER_LINES
    assert union_lines(found) == {"orders.py": expected}
    ref_lines, ref_arcs = reference_measurement(
        task_root, "orders.handler", events, measure_import=True
    )
    assert union_lines(found) == ref_lines
    assert union_arcs(found) == ref_arcs
    # The first flush already carries the init lines.
    assert found[0].lines == {"orders.py": ORDERS_IMPORT_LINES | ORDERS_SMALL_ORDER_LINES}


@pytest.mark.parametrize(
    ("setting", "module_path"),
    [
        ("billing.invoices.handler", "billing/invoices.py"),
        ("src/billing/invoices.handler", "src/billing/invoices.py"),
    ],
)
def test_both_handler_forms_lambda_accepts(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    module_path: str,
) -> None:
    write_module(task_root, module_path, "def handler(event, context):\n    return 'invoiced'\n")
    entry = load_zero_code(monkeypatch, setting)
    assert entry.handler({}, lambda_context()) == "invoiced"
    assert union_lines(uploads(s3, bucket, tmp_path)) == {module_path: {1, 2}}


def test_the_original_is_resolved_once_at_init(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(
        task_root,
        "once.py",
        "LOADS = []\nLOADS.append(1)\ndef handler(e, c):\n    return len(LOADS)\n",
    )
    entry = load_zero_code(monkeypatch, "once.handler")
    monkeypatch.setenv("COVERAGE_ORIGINAL_HANDLER", "changed.later")
    assert [entry.handler({}, lambda_context()) for _ in range(3)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", r"COVERAGE_ORIGINAL_HANDLER is not set"),
        ("handler", r"COVERAGE_ORIGINAL_HANDLER='handler' is not a handler"),
        ("app.", r"COVERAGE_ORIGINAL_HANDLER='app\.' is not a handler"),
        (
            "nowhere.handler",
            r"COVERAGE_ORIGINAL_HANDLER='nowhere\.handler': no module named 'nowhere'",
        ),
        (
            "present.missing",
            r"COVERAGE_ORIGINAL_HANDLER='present\.missing': "
            r"module 'present' has no attribute 'missing'",
        ),
        ("present.VALUE", r"present\.VALUE is not callable"),
        ("sys.exit", r"module 'sys' has the name of a built-in module"),
        ("coverage_wrapper.handler.handler", r"names the wrapper itself"),
    ],
)
def test_a_bad_setting_fails_init_as_an_import_error_naming_the_value(
    task_root: Path, monkeypatch: pytest.MonkeyPatch, setting: str, message: str
) -> None:
    write_module(task_root, "present.py", "VALUE = 3\ndef handler(e, c):\n    return 1\n")
    with pytest.raises(HandlerConfigurationError, match=message) as caught:
        load_zero_code(monkeypatch, setting)
    # The runtime client reports ImportErrors at init as Runtime.ImportModuleError.
    assert isinstance(caught.value, ImportError)


def test_a_missing_dependency_of_the_users_module_raises_unchanged(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(task_root, "needs_dep.py", "import not_installed_anywhere\n")
    with pytest.raises(ModuleNotFoundError) as caught:
        load_zero_code(monkeypatch, "needs_dep.handler")
    assert not isinstance(caught.value, HandlerConfigurationError)
    assert caught.value.name == "not_installed_anywhere"


def test_an_error_at_import_of_the_users_module_raises_unchanged(
    task_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(task_root, "broken.py", "raise RuntimeError('config table missing')\n")
    with pytest.raises(RuntimeError, match=r"^config table missing$") as caught:
        load_zero_code(monkeypatch, "broken.handler")
    assert caught.traceback[-1].path == task_root / "broken.py"
    assert sys.gettrace() is None


def test_parse_handler_matches_the_runtime_split() -> None:
    assert parse_handler("app.handler") == ("app", "handler")
    assert parse_handler("a.b.c.fn") == ("a.b.c", "fn")
    assert parse_handler("dir/sub/mod.fn") == ("dir.sub.mod", "fn")
