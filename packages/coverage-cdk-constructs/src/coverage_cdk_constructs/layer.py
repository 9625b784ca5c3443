"""``CoverageLayer``: the wrapper and coverage.py as a Lambda layer, built on this machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from aws_cdk import AssetHashType, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coverage_cdk_constructs.bundle import Bundle, build_bundle
from coverage_cdk_constructs.bundled_packages import layer_spec
from coverage_cdk_constructs.lambda_platform import SUPPORTED_PYTHONS, python_of_runtime
from coverage_cdk_constructs.published import PublishedCoverageLayer, published_layer


def python_runtime(version: str) -> lambda_.Runtime:
    """The Lambda runtime object for Python ``version`` (``"3.12"``), new versions included."""
    # Equal (runtime_equals) to the predefined Runtime.PYTHON_3_X objects, and
    # it also works for versions newer than the aws-cdk-lib release in use.
    return lambda_.Runtime(
        f"python{version}", lambda_.RuntimeFamily.PYTHON, supports_inline_code=True
    )


class CoverageLayer(lambda_.LayerVersion):
    """The coverage layer: the wrapper, its extensions and coverage.py for the Lambda platform.

    Built locally without Docker (see :mod:`coverage_cdk_constructs.bundle`):
    coverage.py comes from the wheel built for each Python version and the
    architecture, so the compiled tracer always matches the runtime. The asset
    hash is a fingerprint of the inputs: the same inputs never redeploy.

    :param architecture: ``lambda_.Architecture.X86_64`` (default) or ``ARM_64``;
        a layer serves functions of one architecture.
    :param compatible_runtimes: the Python runtimes to carry coverage.py for.
        Default: every runtime in :data:`SUPPORTED_PYTHONS` (3.10 to 3.14).
    :param layer_version_name: default: CloudFormation names it.
    :param removal_policy: default ``DESTROY`` (deployed functions keep a
        deleted layer version's content); ``RETAIN`` keeps every version.
    :param description: default: what it carries.
    :param coverage_versions: coverage.py release per Python version.
        Default :data:`DEFAULT_COVERAGE_VERSIONS`.
    :param wrapper_source: the ``coverage_wrapper`` folder to bundle. Default:
        this repository's when there is one, else the released wheel.
    :param wrapper_version: bundle this release of ``lambda-coverage-wrapper``
        from the package index (instead of a source folder).
    :param extensions: executables for the layer's ``extensions/`` folder.
    :param cache_dir: where wheels and built zips are cached. Default
        ``$LAMBDA_COVERAGE_CACHE_DIR`` or ``~/.cache/lambda-coverage``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
        compatible_runtimes: Sequence[lambda_.Runtime] | None = None,
        layer_version_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        description: str | None = None,
        coverage_versions: Mapping[str, str] | None = None,
        wrapper_source: Path | None = None,
        wrapper_version: str | None = None,
        extensions: Sequence[Path] = (),
        cache_dir: Path | None = None,
    ) -> None:
        runtimes = (
            list(compatible_runtimes)
            if compatible_runtimes is not None
            else [python_runtime(v) for v in SUPPORTED_PYTHONS]
        )
        if not runtimes:
            raise ValueError(f"{construct_id}: compatible_runtimes is empty; name at least one")
        pythons = tuple(python_of_runtime(r.name) for r in runtimes)
        spec = layer_spec(
            architecture.name,
            pythons=pythons,
            coverage_versions=coverage_versions,
            wrapper_source=wrapper_source,
            wrapper_version=wrapper_version,
            extensions=extensions,
        )
        bundle = build_bundle(spec, cache_dir=cache_dir)
        super().__init__(
            scope,
            construct_id,
            code=lambda_.Code.from_asset(
                str(bundle.path),
                asset_hash=bundle.fingerprint,
                asset_hash_type=AssetHashType.CUSTOM,
            ),
            compatible_architectures=[architecture],
            compatible_runtimes=runtimes,
            layer_version_name=layer_version_name,
            removal_policy=removal_policy,
            license="MIT AND Apache-2.0",
            description=description
            or f"Lambda Coverage: wrapper and coverage.py for Python {', '.join(pythons)} "
            f"on {architecture.name}",
        )
        self.bundle: Bundle = bundle
        self.architecture = architecture
        self.python_versions: tuple[str, ...] = pythons

    @classmethod
    def for_stack(
        cls, scope: Construct, *, architecture: lambda_.Architecture = lambda_.Architecture.X86_64
    ) -> CoverageLayer:
        """The stack's own layer for ``architecture``, created on first use.

        This is the layer an :class:`InstrumentedFunction` or the aspect gets
        when no ``layer=`` is given: one per stack and architecture, with
        the construct ID ``LambdaCoverageLayerX8664`` or ``LambdaCoverageLayerArm64``.
        """
        return find_or_create_layer(Stack.of(scope), STACK_LAYER_ID, architecture)

    @staticmethod
    def from_published(
        scope: Construct,
        construct_id: str,
        *,
        version: int | Mapping[str, int],
        architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
        region: str | None = None,
        account: str | None = None,
        default_version: int | None = None,
    ) -> PublishedCoverageLayer:
        """The published layer of one architecture instead of building it (see :mod:`.published`).

        It serves functions of ``architecture`` only (others are refused at
        synth); :meth:`CoverageLayers.published` gives both.

        :param version: the layer version, or one per region (as in the
            publishing manifest) for stacks whose region is not known at synth.
        :param architecture: which of the two published layers. Default ``X86_64``.
        :param region: default: the stack's region (a token in env-agnostic stacks).
        :param account: the publisher's account. Default :data:`.published.PUBLISHER_ACCOUNT`.
        :param default_version: with a table, the version for regions it does not list.
        """
        return published_layer(
            scope,
            construct_id,
            version=version,
            architecture=architecture,
            region=region,
            account=account,
            default_version=default_version,
        )


#: The base construct ID of the layers made for a stack (``LambdaCoverageLayerArm64``).
STACK_LAYER_ID: Final = "LambdaCoverageLayer"


def architecture_suffix(architecture: lambda_.Architecture) -> str:
    """``X8664`` or ``Arm64``: the end of a per-architecture layer's construct ID."""
    return architecture.name.replace("_", "").title()


def find_or_create_layer(
    scope: Construct, base_id: str, architecture: lambda_.Architecture, **props: Any
) -> CoverageLayer:
    """``scope``'s ``CoverageLayer`` for ``architecture`` (ID ``{base_id}{suffix}``), made once."""
    construct_id = base_id + architecture_suffix(architecture)
    existing = scope.node.try_find_child(construct_id)
    if existing is None:
        return CoverageLayer(scope, construct_id, architecture=architecture, **props)
    if not isinstance(existing, CoverageLayer):
        raise TypeError(
            f"{scope.node.path}/{construct_id} exists but is not a CoverageLayer: "
            "rename that construct or pass layer= explicitly"
        )
    return existing
