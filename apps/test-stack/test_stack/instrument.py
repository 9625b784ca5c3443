"""Give a function the coverage layer in zero-code mode, as the CDK constructs do."""

from __future__ import annotations

from dataclasses import replace

from coverage_wrapper.constants import DEFAULT_S3_PREFIX, ZERO_CODE_HANDLER
from coverage_wrapper.instrumentation import coverage_environment, zero_code_environment
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

    The variables are the ones the CDK constructs set (the same functions make
    them); ``settings`` are further ``COVERAGE_*`` variables
    (``COVERAGE_LOG_LEVEL="DEBUG"``) and win over those.
    """
    if function.handler == ZERO_CODE_HANDLER:
        raise ValueError(f"function {function.name!r} is already instrumented")
    instrumented = replace(function, handler=ZERO_CODE_HANDLER, layer=layer)
    return instrumented.with_environment(
        **{
            **coverage_environment(bucket=bucket, prefix=prefix),
            **zero_code_environment(function.handler),
            **settings,
        }
    )
