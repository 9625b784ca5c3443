"""The published coverage layer, for teams that use it instead of building their own.

The layer is published once per architecture, as ``lambda-coverage-x86_64``
and ``lambda-coverage-arm64``, to many regions. Publishing is idempotent, so
the same release can have different version numbers in different regions:
the publishing manifest lists them, and :func:`published_layer` takes either
one version or that per-region table. A stack whose region is unknown at
synth (env-agnostic) gets the table as a CloudFormation mapping, resolved by
``AWS::Region`` at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Aws, CfnMapping, Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: The account that publishes the layer. Not fixed in this release: pass ``account=``.
PUBLISHER_ACCOUNT: Final[str | None] = None
LAYER_NAME_PREFIX: Final = "lambda-coverage"


def published_layer_name(architecture: lambda_.Architecture) -> str:
    """``lambda-coverage-x86_64`` or ``lambda-coverage-arm64``."""
    return f"{LAYER_NAME_PREFIX}-{architecture.name}"


def published_layer(
    scope: Construct,
    construct_id: str,
    *,
    version: int | Mapping[str, int],
    architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
    region: str | None = None,
    account: str | None = None,
) -> lambda_.ILayerVersion:
    """An ``ILayerVersion`` for the published layer in the stack's (or ``region``'s) region."""
    owner = account or PUBLISHER_ACCOUNT
    if owner is None:
        raise ValueError(
            f"{construct_id}: pass account= (the account that published the layer, from "
            "the publishing manifest); this release names no default publisher"
        )
    where = region or Stack.of(scope).region
    number: str
    if isinstance(version, Mapping):
        if not version:
            raise ValueError(f"{construct_id}: version= is an empty table of regions")
        if Token.is_unresolved(where):
            table = CfnMapping(
                scope,
                f"{construct_id}Versions",
                mapping={r: {"version": str(v)} for r, v in sorted(version.items())},
            )
            number = table.find_in_map(Aws.REGION, "version")
        elif where in version:
            number = str(version[where])
        else:
            raise ValueError(
                f"{construct_id}: the layer is not published in {where}; "
                f"it is in {', '.join(sorted(version))}"
            )
    else:
        number = str(version)
    name = published_layer_name(architecture)
    arn = f"arn:{Aws.PARTITION}:lambda:{where}:{owner}:layer:{name}:{number}"
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, arn)
