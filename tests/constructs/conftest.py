"""Shared fixtures: the layer zips built once per session, and a stand-in layer ARN.

Building needs coverage.py's Lambda-platform wheels: downloaded once into the
cache (``~/.cache/lambda-coverage`` or ``$LAMBDA_COVERAGE_CACHE_DIR``) and
reused by every later run. Without a reachable package index and an empty
cache, the tests that need a built layer are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from coverage_cdk_constructs.bundle import Bundle, build_bundle
from coverage_cdk_constructs.bundled_packages import combiner_spec, layer_spec
from coverage_cdk_constructs.errors import WheelDownloadError
from coverage_cdk_constructs.layer import CoverageLayer

LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:lambda-coverage:3"
INLINE_CODE = "def handler(event, context):\n    return 1\n"


def code() -> lambda_.Code:
    """A function's code that needs no asset."""
    return lambda_.Code.from_inline(INLINE_CODE)


def imported_layer(scope: cdk.Stack, construct_id: str = "ImportedLayer") -> lambda_.ILayerVersion:
    """A layer by ARN: for tests about functions, not about building the layer."""
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, LAYER_ARN)


def _build(what: str, build: Callable[[], list[Bundle]]) -> list[Bundle]:
    try:
        return build()
    except WheelDownloadError as error:
        pytest.skip(f"cannot build the {what} without coverage.py's Lambda wheels: {error}")


@pytest.fixture(scope="session")
def layer_bundles() -> dict[str, Bundle]:
    """The default layer for each architecture, built (or taken from the cache) once."""
    bundles = _build("layer", lambda: [build_bundle(layer_spec(a)) for a in ("x86_64", "arm64")])
    return {b.spec.architecture: b for b in bundles}


@pytest.fixture(scope="session")
def combiner_bundle() -> Bundle:
    """The combiner function's default code (arm64, Python 3.13)."""
    (bundle,) = _build("combiner", lambda: [build_bundle(combiner_spec("arm64", "3.13"))])
    return bundle


@pytest.fixture
def layers_built(layer_bundles: dict[str, Bundle]) -> type[CoverageLayer]:
    """CoverageLayer, once its default zips are in the cache (so synthesis does not download)."""
    return CoverageLayer
