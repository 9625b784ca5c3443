"""AWS CDK v2 constructs for Lambda Coverage.

``CoverageBucket`` keeps the data; ``CoverageLayer`` is the wrapper and
coverage.py as a layer, built locally for the Lambda platform, and
``CoverageLayers`` one per architecture (built, published or given);
``InstrumentedFunction`` is a Python function with coverage on;
``CoverageInstrumentation`` is an aspect that instruments every Python
function of a scope; ``CoverageCombiner`` merges the data into reports.
"""

from coverage_cdk_constructs.__about__ import __version__
from coverage_cdk_constructs.aspect import CoverageInstrumentation
from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.combiner import CoverageCombiner
from coverage_cdk_constructs.errors import (
    BucketSafetyError,
    CombinerPlacementError,
    LayerArchitectureError,
    LayerBuildError,
    WheelDownloadError,
)
from coverage_cdk_constructs.function import InstrumentedFunction
from coverage_cdk_constructs.layer import CoverageLayer
from coverage_cdk_constructs.layers import CoverageLayers
from coverage_cdk_constructs.published import PublishedCoverageLayer

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
