"""Errors the wrapper raises to the function's author.

The wrapper raises only at init, for a zero-code handler setting it cannot
use: the function could not run anyway. Everything else is logged, never raised.
"""

from __future__ import annotations


class CoverageWrapperError(Exception):
    """Base class of the wrapper's own errors."""


class HandlerConfigurationError(CoverageWrapperError, ImportError):
    """``COVERAGE_ORIGINAL_HANDLER`` is missing, malformed or names nothing importable.

    It is an ``ImportError`` so that the Lambda runtime reports it as it
    reports a bad handler setting: ``Runtime.ImportModuleError`` at init.
    """
