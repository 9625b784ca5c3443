"""``CoverageLayers``: the coverage layer per CPU architecture, and choosing one for a function.

A layer carries coverage.py's compiled tracer for one architecture, so a
function must get the layer of its own architecture. :class:`CoverageLayers`
holds one per architecture (given, published, or built on first use), and
:func:`layer_for_function` picks it, refusing a layer known to be built for
the other architecture with an error that names the function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final, TypeAlias

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coverage_cdk_constructs.errors import LayerArchitectureError
from coverage_cdk_constructs.lambda_platform import MACHINES
from coverage_cdk_constructs.layer import CoverageLayer, architecture_suffix, find_or_create_layer
from coverage_cdk_constructs.published import PublishedCoverageLayer, published_layer

ARCHITECTURES: Final = (lambda_.Architecture.X86_64, lambda_.Architecture.ARM_64)


class CoverageLayers:
    """The coverage layer for each architecture; each function gets the one for its CPU.

    Pass it as ``layer=`` to :class:`CoverageInstrumentation` or
    :class:`InstrumentedFunction`. Three ways to make one:

    - ``CoverageLayers(x86_64=..., arm64=...)``: layers you have (any
      ``lambda_.ILayerVersion``; a :class:`CoverageLayer` or published layer
      of the other architecture is refused);
    - :meth:`CoverageLayers.published`: the published layers;
    - :meth:`CoverageLayers.build`: a :class:`CoverageLayer` per architecture,
      built only when a function of that architecture needs it.

    A function whose architecture has no layer here is an error at synth
    that names it.
    """

    def __init__(
        self,
        *,
        x86_64: lambda_.ILayerVersion | None = None,
        arm64: lambda_.ILayerVersion | None = None,
    ) -> None:
        given = {"x86_64": x86_64, "arm64": arm64}
        self._layers: dict[str, lambda_.ILayerVersion] = {
            name: layer for name, layer in given.items() if layer is not None
        }
        for name, layer in self._layers.items():
            built_for = layer_architecture(layer)
            if built_for is not None and built_for != name:
                raise LayerArchitectureError(
                    f"CoverageLayers({name}={layer.node.path}): that layer is built for "
                    f"{built_for}; pass it as {built_for}= instead"
                )
        self._make: Callable[[lambda_.Architecture], lambda_.ILayerVersion] | None = None
        self._description = ", ".join(f"{n}={lay.node.path}" for n, lay in self._layers.items())

    @classmethod
    def build(
        cls, scope: Construct, construct_id: str = "CoverageLayer", **layer_props: Any
    ) -> CoverageLayers:
        """A :class:`CoverageLayer` per architecture, each made when a function first needs it.

        The layers are ``{construct_id}X8664`` and ``{construct_id}Arm64`` under
        ``scope``; ``layer_props`` are :class:`CoverageLayer`'s (not
        ``architecture``), e.g. ``compatible_runtimes=[...]``.
        """
        if "architecture" in layer_props:
            raise TypeError(
                "CoverageLayers.build makes one layer per architecture; drop architecture= "
                "(or use CoverageLayer(..., architecture=...) for one)"
            )
        layers = cls()
        layers._make = lambda architecture: find_or_create_layer(
            scope, construct_id, architecture, **layer_props
        )
        layers._description = f"built under {scope.node.path}/{construct_id}"
        return layers

    @classmethod
    def published(
        cls,
        scope: Construct,
        construct_id: str,
        *,
        version: int | Mapping[str, int] | Mapping[str, int | Mapping[str, int]],
        account: str | None = None,
        region: str | None = None,
        default_version: int | None = None,
        architectures: Sequence[lambda_.Architecture] = ARCHITECTURES,
    ) -> CoverageLayers:
        """Both published layers (``{construct_id}X8664``, ``{construct_id}Arm64``).

        :param version: one version, ``{region: version}`` (both architectures
            alike), or per architecture ``{"x86_64": ..., "arm64": ...}`` with
            either form as values (the publishing manifest's numbers can differ).
        :param account: the publisher's account (required in this release).
        :param region: default: the stack's region.
        :param default_version: with region tables, the version elsewhere.
        :param architectures: default both.
        """
        per_architecture = isinstance(version, Mapping) and set(version) <= set(MACHINES)
        made: dict[str, lambda_.ILayerVersion] = {}
        for architecture in architectures:
            if per_architecture:
                assert isinstance(version, Mapping)
                if architecture.name not in version:
                    raise ValueError(
                        f"{construct_id}: version= has no entry for {architecture.name}; "
                        f"give one or pass architectures= without it"
                    )
                chosen: Any = version[architecture.name]
            else:
                chosen = version
            made[architecture.name] = published_layer(
                scope,
                construct_id + architecture_suffix(architecture),
                version=chosen,
                architecture=architecture,
                region=region,
                account=account,
                default_version=default_version,
            )
        return cls(**made)

    @classmethod
    def from_manifest(
        cls,
        scope: Construct,
        construct_id: str,
        manifest: str | PathLike[str],
        *,
        region: str | None = None,
        architectures: Sequence[lambda_.Architecture] | None = None,
    ) -> CoverageLayers:
        """The published layers that a release's ``layers.json`` lists (from ``publish``).

        Layer names, versions per region and the publisher's account all come
        from the manifest; an environment-agnostic stack gets the region table
        (see :func:`~coverage_cdk_constructs.published.published_layer`).

        :param architectures: default: every architecture the manifest lists.
        """
        from coverage_cdk_constructs.manifest import (
            published_versions,
            publisher_account,
            read_manifest,
        )

        layers = read_manifest(Path(manifest))
        versions = published_versions(layers)
        if not layers:
            raise ValueError(f"{construct_id}: {manifest} lists no published layer")
        chosen = architectures or [a for a in ARCHITECTURES if a.name in layers]
        made: dict[str, lambda_.ILayerVersion] = {}
        for architecture in chosen:
            entry = layers.get(architecture.name)
            if entry is None:
                raise ValueError(
                    f"{construct_id}: {manifest} has no {architecture.name} layer; "
                    "pass architectures= without it"
                )
            made[architecture.name] = published_layer(
                scope,
                construct_id + architecture_suffix(architecture),
                version=versions[architecture.name],
                architecture=architecture,
                region=region,
                account=publisher_account(layers),
                layer_name=entry.layer_name,
            )
        return cls(**made)

    @property
    def x86_64(self) -> lambda_.ILayerVersion | None:
        """The x86_64 layer, if given or already built."""
        return self._layers.get("x86_64")

    @property
    def arm64(self) -> lambda_.ILayerVersion | None:
        """The arm64 layer, if given or already built."""
        return self._layers.get("arm64")

    def for_architecture(self, architecture: lambda_.Architecture) -> lambda_.ILayerVersion | None:
        """The layer for ``architecture`` (building it if this is a built family), or ``None``."""
        layer = self._layers.get(architecture.name)
        if layer is None and self._make is not None:
            layer = self._layers[architecture.name] = self._make(architecture)
        return layer

    def __str__(self) -> str:
        return f"CoverageLayers({self._description})"


#: What ``layer=`` accepts: one layer, one per architecture, or ``None`` (the stack's own).
LayerChoice: TypeAlias = "lambda_.ILayerVersion | CoverageLayers | None"


def layer_architecture(layer: lambda_.ILayerVersion) -> str | None:
    """The architecture a layer is known to be built for, or ``None`` for any other layer."""
    if isinstance(layer, CoverageLayer | PublishedCoverageLayer):
        return str(layer.architecture.name)
    return None


def describe_layer_choice(layer: lambda_.ILayerVersion | CoverageLayers | None) -> str:
    """``layer=`` in words, for messages: a path, a family, or the stack's own layers."""
    if layer is None:
        return "the stack's own layers"
    if isinstance(layer, CoverageLayers):
        return str(layer)
    return layer.node.path


def layer_for_function(
    function: lambda_.Function, layer: lambda_.ILayerVersion | CoverageLayers | None
) -> lambda_.ILayerVersion:
    """The layer ``function`` gets from ``layer=``; an error naming it when none fits its CPU.

    ``None`` is the stack's own :class:`CoverageLayer` for the function's
    architecture. A single layer of unknown architecture (any
    ``ILayerVersion`` imported by ARN) is trusted.
    """
    architecture = function.architecture
    fix = (
        "pass layer=CoverageLayers(x86_64=..., arm64=...), CoverageLayers.published(...) or "
        "CoverageLayers.build(...) so that each function gets its architecture's layer"
    )
    if layer is None:
        return CoverageLayer.for_stack(function, architecture=architecture)
    if isinstance(layer, CoverageLayers):
        chosen = layer.for_architecture(architecture)
        if chosen is None:
            raise LayerArchitectureError(
                f"{function.node.path} runs on {architecture.name} but {layer} has no "
                f"{architecture.name} layer: {fix}"
            )
        return chosen
    built_for = layer_architecture(layer)
    if built_for is not None and built_for != architecture.name:
        raise LayerArchitectureError(
            f"{function.node.path} runs on {architecture.name} but the layer "
            f"{layer.node.path} is built for {built_for}: {fix}"
        )
    return layer
