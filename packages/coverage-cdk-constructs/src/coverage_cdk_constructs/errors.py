"""Errors of the constructs package."""

from __future__ import annotations


class LayerBuildError(Exception):
    """A layer or function bundle could not be built; the message says why and what to do."""


class WheelDownloadError(LayerBuildError):
    """The package index could not be reached or had no suitable wheel."""


class LayerArchitectureError(ValueError):
    """A coverage layer was given for functions of another CPU architecture.

    The message names the function, the layer and how to give one per
    architecture (:class:`~coverage_cdk_constructs.CoverageLayers`).
    """


class BucketSafetyError(ValueError):
    """``bucket_props`` would weaken or contradict a :class:`CoverageBucket` safety default.

    The message names the prop and the construct's own prop (or the
    explicit opt-out) to use instead.
    """


class CombinerPlacementError(ValueError):
    """A :class:`CoverageCombiner` cannot be wired where it is; the message says where to put it."""
