"""AWS CDK v2 constructs for Lambda Coverage."""

from coverage_cdk_constructs.__about__ import __version__

__all__ = ["__version__"]
