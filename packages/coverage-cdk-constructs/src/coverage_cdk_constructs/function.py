"""``InstrumentedFunction``: a Python Lambda function with coverage switched on."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.instrumenter import Settings, instrument_function, is_python
from coverage_cdk_constructs.layers import CoverageLayers


class InstrumentedFunction(lambda_.Function):
    """A ``lambda_.Function`` measured by Lambda Coverage.

    :param bucket: a :class:`CoverageBucket` (or any ``s3.IBucket``) for data files.
    :param layer: :class:`CoverageLayers` (one per architecture), one
        ``lambda_.ILayerVersion`` (a :class:`CoverageLayer` or published layer
        of another architecture raises :class:`LayerArchitectureError`), or
        ``None`` (default): the stack's own ``CoverageLayer`` for the
        function's architecture (one per stack and architecture, built on
        first use).
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
    ``COVERAGE_S3_KEY_TEMPLATE``), only by its own code (the grant's
    ``lambda:SourceFunctionArn`` condition, so also on a role other
    functions share), and read nothing. ``COVERAGE_*`` variables
    in ``environment`` win over the instrumentation's (a warning names
    them). A Python this release does not measure, or no room for another
    layer, leaves a plain function with a warning saying why.

    Attribute: ``instrumented`` (whether coverage was switched on).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: CoverageBucket | s3.IBucket,
        layer: lambda_.ILayerVersion | CoverageLayers | None = None,
        coverage_mode: str = "zero-code",
        coverage_enabled: bool = True,
        sample_rate: float = 1.0,
        **function_props: Any,
    ) -> None:
        settings = Settings(
            bucket=bucket, layer=layer, coverage_mode=coverage_mode, sample_rate=sample_rate
        )
        super().__init__(scope, construct_id, **function_props)
        self.instrumented = False
        if not coverage_enabled:
            return
        if not is_python(self):
            raise ValueError(
                f"{self.node.path}: runtime {self.runtime.name} is not a Python runtime; "
                "InstrumentedFunction measures python3.* functions"
            )
        self.instrumented = instrument_function(
            self, settings, opt_out="pass coverage_enabled=False to make it a plain function"
        )
