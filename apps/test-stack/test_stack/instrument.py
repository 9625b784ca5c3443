"""Give a function the coverage layer in zero-code mode, as the CDK constructs do."""

from __future__ import annotations

from dataclasses import replace

from coverage_wrapper.constants import (
    DEFAULT_S3_PREFIX,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_PREFIX,
    ZERO_CODE_HANDLER,
)
from test_stack.functions import LambdaFunction
from test_stack.layer import Layer


def instrument(
    function: LambdaFunction,
    *,
    layer: Layer,
    bucket: str,
    prefix: str = DEFAULT_S3_PREFIX,
    **settings: str,
) -> LambdaFunction:
    """``function`` with the wrapper's handler, its own handler kept aside, and the layer.

    ``settings`` are further ``COVERAGE_*`` variables (``COVERAGE_LOG_LEVEL="DEBUG"``).
    """
    if function.handler == ZERO_CODE_HANDLER:
        raise ValueError(f"function {function.name!r} is already instrumented")
    instrumented = replace(function, handler=ZERO_CODE_HANDLER, layer=layer)
    return instrumented.with_environment(
        **{ENV_ORIGINAL_HANDLER: function.handler, ENV_S3_BUCKET: bucket, ENV_S3_PREFIX: prefix},
        **settings,
    )
