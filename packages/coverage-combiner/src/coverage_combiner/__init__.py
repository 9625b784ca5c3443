"""Merge Lambda Coverage data files into one trustworthy report.

- :func:`combine_coverage_files` — the one call: S3 prefix in, outputs in S3, summary back;
- :func:`combine` and :func:`write_outputs` — the steps, for other sources and destinations;
- ``lambda-coverage combine`` — the command line (:mod:`coverage_combiner.cli`);
- :mod:`coverage_combiner.lambda_handler` — the Lambda entry point.

The API, outputs and remapping are imported on first use: a process that
only merges (a worker process of a parallel merge) does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from coverage_combiner.__about__ import __version__

# Imported here, not on first use: ``combine`` is also the name of a submodule,
# which, once imported, would shadow the function.
from coverage_combiner.combine import CombineOptions, CombineResult, combine
from coverage_combiner.errors import CombinerError, MissingSourceError, SourceError

if TYPE_CHECKING:
    from coverage_combiner.api import combine_coverage_files
    from coverage_combiner.outputs import DEFAULT_FORMATS, FORMATS, write_outputs
    from coverage_combiner.remap import PathRemapper

_WHERE = {
    "combine_coverage_files": "api",
    "DEFAULT_FORMATS": "outputs",
    "FORMATS": "outputs",
    "write_outputs": "outputs",
    "PathRemapper": "remap",
}

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "CombineOptions",
    "CombineResult",
    "CombinerError",
    "MissingSourceError",
    "PathRemapper",
    "SourceError",
    "__version__",
    "combine",
    "combine_coverage_files",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'coverage_combiner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"coverage_combiner.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
