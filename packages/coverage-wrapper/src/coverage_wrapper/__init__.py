"""Lambda Coverage runtime: measure a Python Lambda function's code coverage.

Three ways in, one measurement underneath:

- ``@coverage_handler`` on the handler;
- ``with CoverageContext():`` around a block;
- zero code change: the function's handler set to
  ``coverage_wrapper.handler.handler`` and the real one in
  ``COVERAGE_ORIGINAL_HANDLER``.

Importing this package is cheap: each public name is imported when first
used, coverage.py when measuring starts, boto3 when data is uploaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from coverage_wrapper.__about__ import __version__

if TYPE_CHECKING:
    from coverage_wrapper.combiner import combine_coverage_files
    from coverage_wrapper.context import CoverageContext
    from coverage_wrapper.decorator import coverage_handler
    from coverage_wrapper.health_check import get_coverage_status, health_check_handler

__all__ = [
    "CoverageContext",
    "__version__",
    "combine_coverage_files",
    "coverage_handler",
    "get_coverage_status",
    "health_check_handler",
]

_LAZY = {
    "CoverageContext": "coverage_wrapper.context",
    "combine_coverage_files": "coverage_wrapper.combiner",
    "coverage_handler": "coverage_wrapper.decorator",
    "get_coverage_status": "coverage_wrapper.health_check",
    "health_check_handler": "coverage_wrapper.health_check",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'coverage_wrapper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
