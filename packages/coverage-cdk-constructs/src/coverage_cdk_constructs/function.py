"""``InstrumentedFunction``: a Python Lambda function with coverage switched on."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.instrument import instrument_function


class InstrumentedFunction(lambda_.Function):
    """A ``lambda_.Function`` measured by Lambda Coverage.

    :param bucket: a :class:`CoverageBucket` (or any ``s3.IBucket``) for data files.
    :param layer: the coverage layer (``CoverageLayer(...).layer_version`` or
        ``lambda_.LayerVersion.from_layer_version_arn(...)``). Required for now.
    :param coverage_mode: ``"zero-code"`` (default: the handler becomes
        ``coverage_wrapper.handler.handler`` and yours goes to
        ``COVERAGE_ORIGINAL_HANDLER``, so init-time lines are measured) or
        ``"decorator"`` (your code uses ``@coverage_handler``; the handler is left alone).
    :param coverage_enabled: ``False`` makes a plain function: no layer, no
        environment, no permission (for production stacks). Default ``True``.
    :param sample_rate: fraction of invocations measured. Default ``1``.

    Every other keyword is ``lambda_.Function``'s. The function may put
    objects only under its own keys of the raw prefix, and read nothing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: CoverageBucket | s3.IBucket,
        layer: lambda_.ILayerVersion | None = None,
        coverage_mode: str = "zero-code",
        coverage_enabled: bool = True,
        sample_rate: float = 1.0,
        **function_props: Any,
    ) -> None:
        super().__init__(scope, construct_id, **function_props)
        if not coverage_enabled:
            return
        if layer is None:
            raise ValueError(
                f"{self.node.path}: pass layer= (the coverage layer's ILayerVersion); "
                "a layer made for you per stack is not available yet"
            )
        instrument_function(
            self, bucket=bucket, layer=layer, coverage_mode=coverage_mode, sample_rate=sample_rate
        )
