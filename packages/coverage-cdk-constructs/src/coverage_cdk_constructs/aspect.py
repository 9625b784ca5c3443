"""``CoverageInstrumentation``: instrument every Python function in a scope."""

from __future__ import annotations

import jsii
from aws_cdk import Annotations, IAspect
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.function import InstrumentedFunction
from coverage_cdk_constructs.instrument import (
    check_options,
    exclude_from_coverage,
    instrument_function,
    is_excluded,
    is_instrumented,
    is_python,
)


@jsii.implements(IAspect)
class CoverageInstrumentation:
    """An aspect: ``Aspects.of(stack).add(CoverageInstrumentation(bucket=..., layer=...))``.

    Every ``lambda_.Function`` with a ``python3.*`` runtime gets the layer, the
    environment, a redirected handler (zero-code mode) and permission to write
    its own data files. Other functions (container images, other languages)
    are left alone with a warning on them. An :class:`InstrumentedFunction`
    is left as its own props say (``coverage_enabled=False`` stays off), and
    no function is instrumented twice. Add it with
    ``AspectPriority.MUTATING`` so that it runs before read-only aspects
    such as cdk-nag's checks. Keep a function (or a whole construct) out
    with :meth:`CoverageInstrumentation.exclude`.

    :param bucket: a :class:`CoverageBucket` or any ``s3.IBucket``.
    :param layer: default: the stack's own :class:`CoverageLayer` per architecture.
    :param coverage_mode: ``"zero-code"`` (default) or ``"decorator"``.
    :param sample_rate: fraction of invocations measured. Default ``1``.
    """

    def __init__(
        self,
        *,
        bucket: CoverageBucket | s3.IBucket,
        layer: lambda_.ILayerVersion | None = None,
        coverage_mode: str = "zero-code",
        sample_rate: float = 1.0,
    ) -> None:
        check_options(coverage_mode, sample_rate)
        self.bucket = bucket
        self.layer = layer
        self.coverage_mode = coverage_mode
        self.sample_rate = sample_rate

    @staticmethod
    def exclude(scope: IConstruct) -> None:
        """Keep ``scope`` and every function under it uninstrumented (e.g. a combiner)."""
        exclude_from_coverage(scope)

    def visit(self, node: IConstruct) -> None:
        """Instrument ``node`` if it is a Python function not instrumented yet."""
        if (
            not isinstance(node, lambda_.Function)
            or isinstance(node, InstrumentedFunction)
            or is_instrumented(node)
            or is_excluded(node)
        ):
            return
        path = node.node.path
        if node.runtime == lambda_.Runtime.FROM_IMAGE or not is_python(node):
            Annotations.of(node).add_warning_v2(
                "lambda-coverage:not-python",
                f"Lambda Coverage skipped {path}: runtime {node.runtime.name} is not a Python "
                "runtime packaged as a zip",
            )
            return
        instrument_function(
            node,
            bucket=self.bucket,
            layer=self.layer,
            coverage_mode=self.coverage_mode,
            sample_rate=self.sample_rate,
        )
