"""The core the wrapper asks coverage.py for when none is configured."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler, health_check_handler
from coverage_wrapper.measurement import SYSMON, default_core
from tests.wrapper.conftest import lambda_context, uploads, write_module

LINE_ONLY_SYSMON = (3, 12) <= sys.version_info[:2] < (3, 14)

APP = """\
def handler(event, context):
    if event.get("fast"):
        return 1
    return 2
"""


def test_line_only_uses_sysmon_where_it_is_exact_and_cheaper() -> None:
    assert default_core(False, None) == (SYSMON if LINE_ONLY_SYSMON else None)
    # Branch data: sysmon cannot measure branches before 3.14.
    assert default_core(True, None) is None
    # A configured core always wins.
    assert default_core(False, "ctrace") is None


@pytest.mark.parametrize(
    ("branch", "configured", "expected"),
    [
        ("false", None, "SysMonitor" if LINE_ONLY_SYSMON else "CTracer"),
        ("true", None, "CTracer"),
        ("false", "ctrace", "CTracer"),
    ],
)
def test_the_core_in_use(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    branch: str,
    configured: str | None,
    expected: str,
) -> None:
    if sys.version_info >= (3, 14):
        pytest.skip("coverage.py chooses sysmon itself from 3.14")
    monkeypatch.delenv("COVERAGE_CORE", raising=False)
    if configured is not None:
        monkeypatch.setenv("COVERAGE_CORE", configured)
    monkeypatch.setenv("COVERAGE_BRANCH_COVERAGE", branch)
    write_module(task_root, "app.py", APP)
    import app  # type: ignore[import-not-found]

    handler = coverage_handler(app.handler)
    assert handler({"fast": True}, lambda_context("r1")) == 1
    assert handler({}, lambda_context("r2")) == 2
    assert health_check_handler()["measurement"]["core"] == expected
    found = uploads(s3, bucket, tmp_path)
    assert found[-1].lines == {"app.py": {2, 3, 4}}
