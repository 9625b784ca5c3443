"""AWS CDK v2 constructs for Lambda Coverage.

``CoverageBucket`` keeps the data; ``CoverageLayer`` is the wrapper and
coverage.py as a layer, built locally for the Lambda platform, and
``CoverageLayers`` one per architecture (built, published or given);
``InstrumentedFunction`` is a Python function with coverage on;
``CoverageInstrumentation`` is an aspect that instruments every Python
function of a scope; ``CoverageCombiner`` merges the data into reports.

The constructs are imported on first use (PEP 562 ``__getattr__``), not
when the package is: the layer builder (:mod:`.bundle`) and the
``lambda-coverage-layer`` command live in this package too, and importing
``aws_cdk`` starts the CDK's Node.js kernel, a second or more that
building or validating a zip does not need. ``import coverage_cdk_constructs``
therefore costs nothing, and ``from coverage_cdk_constructs import
CoverageLayer`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from coverage_cdk_constructs.__about__ import __version__
from coverage_cdk_constructs.errors import (
    BucketSafetyError,
    CombinerPlacementError,
    LayerArchitectureError,
    LayerBuildError,
    WheelDownloadError,
)

if TYPE_CHECKING:
    from coverage_cdk_constructs.aspect import CoverageInstrumentation
    from coverage_cdk_constructs.bucket import CoverageBucket
    from coverage_cdk_constructs.combiner import CoverageCombiner
    from coverage_cdk_constructs.function import InstrumentedFunction
    from coverage_cdk_constructs.layer import CoverageLayer
    from coverage_cdk_constructs.layers import CoverageLayers
    from coverage_cdk_constructs.published import PublishedCoverageLayer

#: Each construct's module: imported (with aws_cdk) when the name is first used.
_CONSTRUCTS: Final = {
    "CoverageBucket": "bucket",
    "CoverageCombiner": "combiner",
    "CoverageInstrumentation": "aspect",
    "CoverageLayer": "layer",
    "CoverageLayers": "layers",
    "InstrumentedFunction": "function",
    "PublishedCoverageLayer": "published",
}


def __getattr__(name: str) -> Any:
    module = _CONSTRUCTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BucketSafetyError",
    "CombinerPlacementError",
    "CoverageBucket",
    "CoverageCombiner",
    "CoverageInstrumentation",
    "CoverageLayer",
    "CoverageLayers",
    "InstrumentedFunction",
    "LayerArchitectureError",
    "LayerBuildError",
    "PublishedCoverageLayer",
    "WheelDownloadError",
    "__version__",
]
