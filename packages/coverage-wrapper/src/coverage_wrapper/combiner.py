"""``combine_coverage_files``, kept for code written against the single-package API.

The combiner is its own package (``lambda-coverage-combiner``); the wrapper
does not depend on it and imports it only when this name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_INSTALL_HINT = (
    "combine_coverage_files lives in the lambda-coverage-combiner package: "
    "pip install lambda-coverage-combiner (or lambda-coverage-wrapper[combiner])"
)


def combine_coverage_files(*args: Any, **kwargs: Any) -> Any:
    """Merge data files from S3 into one report.

    See ``coverage_combiner.combine_coverage_files`` for the arguments.
    """
    try:
        module = importlib.import_module("coverage_combiner")
        combine = module.combine_coverage_files
    except (ImportError, AttributeError) as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return combine(*args, **kwargs)
