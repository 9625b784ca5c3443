"""Merge Lambda Coverage data files into one trustworthy report.

- :func:`combine_coverage_files` — the one call: S3 prefix in, outputs in S3, summary back;
- :func:`combine` and :func:`write_outputs` — the steps, for other sources and destinations;
- ``lambda-coverage combine`` — the command line (:mod:`coverage_combiner.cli`);
- :mod:`coverage_combiner.lambda_handler` — the Lambda entry point.
"""

from coverage_combiner.__about__ import __version__
from coverage_combiner.api import combine_coverage_files
from coverage_combiner.combine import CombineOptions, CombineResult, combine
from coverage_combiner.errors import CombinerError, MissingSourceError, SourceError
from coverage_combiner.outputs import DEFAULT_FORMATS, FORMATS, write_outputs
from coverage_combiner.remap import PathRemapper

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
