"""AWS CDK v2 constructs for Lambda Coverage.

``CoverageBucket`` keeps the data; ``InstrumentedFunction`` is a Python
function with coverage on; ``CoverageInstrumentation`` is an aspect that
instruments every Python function of a scope.
"""

from coverage_cdk_constructs.__about__ import __version__
from coverage_cdk_constructs.aspect import CoverageInstrumentation
from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.function import InstrumentedFunction

__all__ = ["CoverageBucket", "CoverageInstrumentation", "InstrumentedFunction", "__version__"]
