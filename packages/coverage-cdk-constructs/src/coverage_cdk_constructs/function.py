"""``InstrumentedFunction``: a Python Lambda function with coverage switched on."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.instrument import check_options, instrument_function, is_python


class InstrumentedFunction(lambda_.Function):
    """A ``lambda_.Function`` measured by Lambda Coverage.

    :param bucket: a :class:`CoverageBucket` (or any ``s3.IBucket``) for data files.
    :param layer: the coverage layer: a :class:`CoverageLayer`,
        ``CoverageLayer.from_published(...)`` or any ``lambda_.ILayerVersion``.
        Default: the stack's own ``CoverageLayer`` for the function's
        architecture (one per stack and architecture, built on first use).
    :param coverage_mode: ``"zero-code"`` (default: the handler becomes
        ``coverage_wrapper.handler.handler`` and yours goes to
        ``COVERAGE_ORIGINAL_HANDLER``, so init-time lines are measured) or
        ``"decorator"`` (your code uses ``@coverage_handler``; the handler is left alone).
    :param coverage_enabled: ``False`` makes a plain function: no layer, no
        environment, no permission (for production stacks). Default ``True``.
    :param sample_rate: fraction of invocations measured. Default ``1``.

    Every other keyword is ``lambda_.Function``'s. The function may put
    objects only under its own keys of the raw prefix
    (``{raw}yyyy/mm/dd/{function name}/...``, the key layout it is given in
    ``COVERAGE_S3_KEY_TEMPLATE``), and read nothing.
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
        check_options(coverage_mode, sample_rate)
        super().__init__(scope, construct_id, **function_props)
        if not coverage_enabled:
            return
        if not is_python(self):
            raise ValueError(
                f"{self.node.path}: runtime {self.runtime.name} is not a Python runtime; "
                "InstrumentedFunction measures python3.* functions"
            )
        instrument_function(
            self, bucket=bucket, layer=layer, coverage_mode=coverage_mode, sample_rate=sample_rate
        )
