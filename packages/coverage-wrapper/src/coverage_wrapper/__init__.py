"""Lambda Coverage runtime: measure a Python Lambda function's code coverage.

Three ways in, one measurement underneath:

- ``@coverage_handler`` on the handler;
- ``with CoverageContext():`` around a block;
- zero code change: the function's handler set to
  ``coverage_wrapper.handler.handler`` and the real one in
  ``COVERAGE_ORIGINAL_HANDLER``.

Importing this package is cheap: coverage.py is imported when measuring
starts, boto3 when data is uploaded.
"""

from __future__ import annotations

from coverage_wrapper.__about__ import __version__
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
