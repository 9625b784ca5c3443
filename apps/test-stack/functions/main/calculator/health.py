"""The health operation: the function's own status plus the coverage wrapper's."""

from __future__ import annotations

import platform
from typing import Any


def health(context: Any) -> dict[str, Any]:
    """Report the function and, when the coverage layer is present, its health."""
    status: dict[str, Any] = {
        "status": "ok",
        "python": platform.python_version(),
        "function": getattr(context, "function_name", None),
    }
    try:
        from coverage_wrapper import health_check_handler
    except ImportError:
        status["coverage"] = {"status": "not installed"}
    else:
        status["coverage"] = health_check_handler()
    return status
