"""``CoverageInstrumentation``: instrument every Python function in a scope."""

from __future__ import annotations

import jsii
from aws_cdk import Annotations, IAspect
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.function import InstrumentedFunction
from coverage_cdk_constructs.instrument import instrument_function, is_python


@jsii.implements(IAspect)
class CoverageInstrumentation:
    """An aspect: ``Aspects.of(stack).add(CoverageInstrumentation(bucket=..., layer=...))``.

    Every ``lambda_.Function`` with a ``python3.*`` runtime gets the layer, the
    environment, a redirected handler (zero-code mode) and permission to write
    its own data files. Other functions (container images, other languages)
    are left alone with a warning on them. Functions already instrumented
    (an :class:`InstrumentedFunction`, or seen before) are skipped. Add it
    with ``AspectPriority.MUTATING`` where your CDK version has priorities.
    """

    def __init__(
        self,
        *,
        bucket: CoverageBucket | s3.IBucket,
        layer: lambda_.ILayerVersion,
        coverage_mode: str = "zero-code",
        sample_rate: float = 1.0,
    ) -> None:
        self.bucket = bucket
        self.layer = layer
        self.coverage_mode = coverage_mode
        self.sample_rate = sample_rate
        self._done: set[str] = set()

    def visit(self, node: IConstruct) -> None:
        """Instrument ``node`` if it is a Python function not instrumented yet."""
        if not isinstance(node, lambda_.Function) or isinstance(node, InstrumentedFunction):
            return
        path = node.node.path
        if path in self._done:
            return
        self._done.add(path)
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
