"""The published coverage layer, for teams that use it instead of building their own.

The layer is published once per architecture, as ``lambda-coverage-x86_64``
and ``lambda-coverage-arm64``, to many regions. Publishing is idempotent, so
the same release can have different version numbers in different regions:
the publishing manifest lists them, and :func:`published_layer` takes either
one version or that per-region table. A stack whose region is unknown at
synth (env-agnostic) gets the table as a CloudFormation mapping, resolved by
``AWS::Region`` at deploy time; ``default_version`` is its fallback for
regions the table does not list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import jsii
from aws_cdk import Annotations, Aws, CfnMapping, Resource, Stack, Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk.interfaces import aws_lambda as lambda_refs
from constructs import Construct

from coverage_cdk_constructs.manifest import published_layer_name

#: The account that publishes the layer. Not fixed in this release: pass ``account=``.
PUBLISHER_ACCOUNT: Final[str | None] = None
#: The warning on an env-agnostic stack whose region table has no fallback.
REGION_TABLE_WARNING: Final = "lambda-coverage:region-table"


@jsii.implements(lambda_.ILayerVersion)
class PublishedCoverageLayer(Resource):
    """The published layer of one architecture, by ARN: an ``ILayerVersion`` that knows its CPU.

    Made by :meth:`CoverageLayer.from_published` and
    :meth:`CoverageLayers.published`; the architecture lets
    :class:`InstrumentedFunction` and the aspect refuse it for functions of
    the other architecture instead of attaching a layer that cannot load.

    Attributes: ``layer_version_arn``, ``architecture``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer_version_arn: str,
        architecture: lambda_.Architecture,
    ) -> None:
        super().__init__(scope, construct_id, environment_from_arn=layer_version_arn)
        self._arn = layer_version_arn
        self.architecture = architecture

    @property
    def layer_version_arn(self) -> str:
        """The ARN of the layer version."""
        return self._arn

    @property
    def layer_version_ref(self) -> lambda_refs.LayerVersionReference:
        """A reference to this layer version (aws-cdk-lib's ``ILayerVersionRef``)."""
        return lambda_refs.LayerVersionReference(layer_version_arn=self._arn)

    @property
    def compatible_runtimes(self) -> list[lambda_.Runtime] | None:
        """Not recorded for a layer imported by ARN: any runtime may use it."""
        return None

    def add_permission(
        self, id: str, *, account_id: str, organization_id: str | None = None
    ) -> None:
        """Let ``account_id`` (or an organisation) use this layer version, as aws-cdk-lib does."""
        lambda_.CfnLayerVersionPermission(
            self,
            id,
            action="lambda:GetLayerVersion",
            layer_version_arn=self._arn,
            principal=account_id,
            organization_id=organization_id,
        )


def published_layer(
    scope: Construct,
    construct_id: str,
    *,
    version: int | Mapping[str, int],
    architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
    region: str | None = None,
    account: str | None = None,
    default_version: int | None = None,
    layer_name: str | None = None,
) -> PublishedCoverageLayer:
    """The published layer for ``architecture`` in the stack's (or ``region``'s) region.

    :param version: one version, or ``{region: version}`` from the publishing manifest.
    :param default_version: with a table, the version for a region it does not
        list. In an env-agnostic stack it becomes the mapping's fallback
        (``Fn::FindInMap`` with ``DefaultValue``, which adds the
        ``AWS::LanguageExtensions`` transform); without it, such a stack gets a
        warning that other regions fail at deploy time.
    :param layer_name: default ``lambda-coverage-<architecture>`` (``publish --layer-name``).
    """
    owner = account or PUBLISHER_ACCOUNT
    if owner is None:
        raise ValueError(
            f"{construct_id}: pass account= (the account that published the layer, from "
            "the publishing manifest); this release names no default publisher"
        )
    where = region or Stack.of(scope).region
    number = _version_in(scope, construct_id, version, where, default_version)
    name = layer_name or published_layer_name(architecture.name)
    arn = f"arn:{Aws.PARTITION}:lambda:{where}:{owner}:layer:{name}:{number}"
    layer = PublishedCoverageLayer(
        scope, construct_id, layer_version_arn=arn, architecture=architecture
    )
    if isinstance(version, Mapping) and Token.is_unresolved(where) and default_version is None:
        Annotations.of(layer).add_warning_v2(
            REGION_TABLE_WARNING,
            f"Lambda Coverage: {Stack.of(scope).node.path} is environment-agnostic, so this "
            "layer's version is looked up by region at deploy time; it is published in "
            f"{', '.join(sorted(version))} only, and a deployment elsewhere fails. Pass "
            "default_version= for other regions, or give the stack an env with its region",
        )
    return layer


def _version_in(
    scope: Construct,
    construct_id: str,
    version: int | Mapping[str, int],
    where: str,
    default_version: int | None,
) -> str:
    if not isinstance(version, Mapping):
        return str(version)
    if not version:
        raise ValueError(f"{construct_id}: version= is an empty table of regions")
    if not Token.is_unresolved(where):
        if where in version:
            return str(version[where])
        if default_version is not None:
            return str(default_version)
        raise ValueError(
            f"{construct_id}: the layer is not published in {where}; it is in "
            f"{', '.join(sorted(version))} (pass default_version= to use one version elsewhere)"
        )
    table = CfnMapping(
        scope,
        f"{construct_id}Versions",
        mapping={r: {"version": str(v)} for r, v in sorted(version.items())},
    )
    if default_version is not None:
        return table.find_in_map(Aws.REGION, "version", str(default_version))
    return table.find_in_map(Aws.REGION, "version")
