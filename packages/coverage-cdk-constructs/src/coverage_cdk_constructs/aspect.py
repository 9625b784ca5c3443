"""``CoverageInstrumentation``: instrument every Python function in a scope."""

from __future__ import annotations

import jsii
from aws_cdk import Annotations, IAspect, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.errors import LayerArchitectureError, LayerBuildError
from coverage_cdk_constructs.function import InstrumentedFunction
from coverage_cdk_constructs.instrumenter import (
    WARN_CDK_SINGLETON,
    WARN_CONFLICTING_ASPECTS,
    WARN_CONTAINER_IMAGE,
    WARN_NOT_PYTHON,
    Settings,
    SynthError,
    exclude_from_coverage,
    instrument_function,
    instrumented_with,
    is_excluded,
    is_python,
    skip,
)
from coverage_cdk_constructs.layers import CoverageLayers


@jsii.implements(IAspect)
class CoverageInstrumentation:
    """An aspect that instruments every Python function of a scope, the existing ones included.

    ``Aspects.of(stack).add(CoverageInstrumentation(bucket=...), priority=AspectPriority.MUTATING)``

    Every ``lambda_.Function`` whose runtime name starts with ``python3.``
    gets the layer of its architecture, the environment, a redirected
    handler (zero-code mode) and permission to write its own data files.
    It never fails a synthesis because of a function it cannot measure:
    container images, other languages, a Python this release does not
    measure and functions with five layers already are left untouched, each
    with one warning (its id starts with ``lambda-coverage:``) that says
    why; so are aws-cdk-lib's singleton handlers (e.g. ``BucketDeployment``'s),
    silently when they are not Python. Variables the function already sets
    win (a warning names them), and a role imported with ``mutable=False``
    is not changed (a warning names the grant to add). An
    :class:`InstrumentedFunction` keeps its own settings, no function is
    instrumented twice, and a second aspect with other settings is
    reported. Add it with ``AspectPriority.MUTATING`` so that it runs before
    read-only aspects. Keep a function (or a whole construct) out with
    :meth:`CoverageInstrumentation.exclude`.

    :param bucket: a :class:`CoverageBucket` or any ``s3.IBucket`` (then the
        prefix is ``coverage/``).
    :param layer: :class:`CoverageLayers` (one per architecture: given,
        published or built), one ``lambda_.ILayerVersion`` (refused at synth,
        naming the function, for functions of another architecture when it
        is a :class:`CoverageLayer` or a published layer), or ``None``
        (default): the stack's own :class:`CoverageLayer` per architecture,
        built when a function of that architecture needs it.
    :param coverage_mode: ``"zero-code"`` (default) or ``"decorator"``.
    :param sample_rate: fraction of invocations measured. Default ``1``.
    :param include_singletons: also instrument the functions of
        ``lambda_.SingletonFunction`` (aws-cdk-lib's own handlers, such as
        ``BucketDeployment``'s). Default ``False``.
    """

    def __init__(
        self,
        *,
        bucket: CoverageBucket | s3.IBucket,
        layer: lambda_.ILayerVersion | CoverageLayers | None = None,
        coverage_mode: str = "zero-code",
        sample_rate: float = 1.0,
        include_singletons: bool = False,
    ) -> None:
        self.settings = Settings(
            bucket=bucket, layer=layer, coverage_mode=coverage_mode, sample_rate=sample_rate
        )
        self.include_singletons = include_singletons
        # Per stack (kept alive here, so ids are not reused): function ARN
        # token -> the SingletonFunction that owns the function.
        self._singletons: dict[int, tuple[Stack, dict[str, str]]] = {}
        self._conflicts_reported: set[str] = set()
        self._build_failures: dict[str, str] = {}

    @property
    def bucket(self) -> CoverageBucket | s3.IBucket:
        """Where the data files go."""
        return self.settings.bucket

    @property
    def layer(self) -> lambda_.ILayerVersion | CoverageLayers | None:
        """The layer option, as given."""
        return self.settings.layer

    @staticmethod
    def exclude(scope: IConstruct) -> None:
        """Keep ``scope`` and every function under it uninstrumented (e.g. a combiner)."""
        exclude_from_coverage(scope)

    def visit(self, node: IConstruct) -> None:
        """Instrument ``node`` if it is a Python function not instrumented yet."""
        if (
            not isinstance(node, lambda_.Function)
            or isinstance(node, InstrumentedFunction)
            or is_excluded(node)
        ):
            return
        done_with = instrumented_with(node)
        if done_with is not None:
            self._report_conflict(node, done_with)
            return
        opt_out = "keep it out with CoverageInstrumentation.exclude(function) or on a scope above"
        singleton = None if self.include_singletons else self._singleton_of(node)
        if singleton is not None:
            # aws-cdk-lib's own Node.js handlers are no news: no warning for them.
            if is_python(node):
                skip(
                    node,
                    WARN_CDK_SINGLETON,
                    f"it is the shared handler of the SingletonFunction {singleton} "
                    "(infrastructure code, not yours)",
                    "Measure it with CoverageInstrumentation(..., include_singletons=True), "
                    "or acknowledge this warning",
                )
            return
        if node.runtime.name == lambda_.Runtime.FROM_IMAGE.name:
            skip(
                node,
                WARN_CONTAINER_IMAGE,
                "it is a container image, which layers cannot reach",
                f"Build the wrapper into the image (see the wrapper's README), or {opt_out}",
            )
            return
        if not is_python(node):
            skip(
                node,
                WARN_NOT_PYTHON,
                f"runtime {node.runtime.name} is not Python",
                f"Lambda Coverage measures python3.* functions; {opt_out}",
            )
            return
        self._instrument(node, opt_out)

    def _instrument(self, function: lambda_.Function, opt_out: str) -> None:
        architecture = function.architecture.name
        failed = self._build_failures.get(architecture)
        if failed is not None:
            function.node.add_validation(SynthError(failed))
            return
        try:
            instrument_function(function, self.settings, opt_out=opt_out)
        except LayerArchitectureError as error:
            # Reported on the function: the synthesis fails naming each one.
            function.node.add_validation(SynthError(f"LayerArchitectureError: {error}"))
        except LayerBuildError as error:
            message = (
                f"{type(error).__name__}: the coverage layer for {architecture} could not be "
                f"built (first needed by {function.node.path}): {error}"
            )
            self._build_failures[architecture] = message
            function.node.add_validation(SynthError(message))

    def _singleton_of(self, function: lambda_.Function) -> str | None:
        """The path of the ``SingletonFunction`` whose function this is, if any."""
        stack = Stack.of(function)
        entry = self._singletons.get(id(stack))
        if entry is None:
            owners = {
                construct.function_arn: construct.node.path
                for construct in stack.node.find_all()
                if isinstance(construct, lambda_.SingletonFunction)
            }
            entry = self._singletons[id(stack)] = (stack, owners)
        return entry[1].get(function.function_arn)

    def _report_conflict(self, function: lambda_.Function, done_with: Settings) -> None:
        ours, theirs = self.settings.describe(), done_with.describe()
        stack_path = Stack.of(function).node.path
        if ours == theirs or stack_path in self._conflicts_reported:
            return
        self._conflicts_reported.add(stack_path)
        Annotations.of(Stack.of(function)).add_warning_v2(
            WARN_CONFLICTING_ASPECTS,
            f"Lambda Coverage: two CoverageInstrumentation aspects with different settings "
            f"reach {function.node.path} (and maybe other functions of {stack_path}); it keeps "
            f"the first one's ({theirs}) and ignores this one's ({ours}). Add one aspect per "
            "function, or exclude a scope from one of them",
        )
