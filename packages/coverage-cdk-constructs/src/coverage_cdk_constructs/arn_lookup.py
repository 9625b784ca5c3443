"""Where the published layer's ARNs can be looked up, and ``lambda-coverage-layer arn``.

After a region's canary passed, the publisher writes, in that region's SSM
Parameter Store, per architecture and Python (``3.12``)::

    /lambda-coverage/layer/<architecture>/<python>/latest      -> the newest ARN
    /lambda-coverage/layer/<architecture>/<python>/<semver>    -> that release's ARN

``<semver>`` is the layer's package version (``0.1.0``). A deployment can
read them (``{{resolve:ssm:/lambda-coverage/layer/arm64/3.12/latest}}``), and
``lambda-coverage-layer arn --region R --architecture A`` prints one, from
SSM or from a publishing manifest (``--manifest layers.json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from coverage_cdk_constructs.lambda_platform import MACHINES, SUPPORTED_PYTHONS
from coverage_cdk_constructs.manifest import read_manifest

SSM_PREFIX: Final = "/lambda-coverage/layer"
EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_USAGE: Final = 2


class SsmClient(Protocol):
    """The calls of boto3's SSM client that the publisher and the lookup make."""

    def get_parameter(self, *, Name: str) -> Any:
        """Read one parameter."""

    def put_parameter(self, *, Name: str, Value: str, Type: str, Overwrite: bool) -> Any:
        """Write one parameter."""


def parameter_name(prefix: str, architecture: str, python: str, version: str = "latest") -> str:
    """``/lambda-coverage/layer/<architecture>/<python>/<version or latest>``."""
    return f"{prefix.rstrip('/')}/{architecture}/{python}/{version}"


def parameter_names(
    prefix: str, architecture: str, pythons: Sequence[str], package_version: str
) -> list[str]:
    """Every parameter one publish writes in a region: ``latest`` and the semver, per Python."""
    return [
        parameter_name(prefix, architecture, python, version)
        for python in pythons
        for version in ("latest", package_version)
    ]


def read_parameter(ssm: SsmClient, name: str) -> str | None:
    """A parameter's value, or ``None`` when it does not exist."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except Exception as error:
        if type(error).__name__ == "ParameterNotFound":
            return None
        raise


def write_parameters(
    ssm: SsmClient,
    *,
    prefix: str,
    architecture: str,
    pythons: Sequence[str],
    package_version: str,
    arn: str,
    dry_run: bool = False,
) -> int:
    """Point the region's parameters at ``arn``; how many differed (written unless ``dry_run``)."""
    changed = 0
    for name in parameter_names(prefix, architecture, pythons, package_version):
        if read_parameter(ssm, name) == arn:
            continue
        changed += 1
        if not dry_run:
            ssm.put_parameter(Name=name, Value=arn, Type="String", Overwrite=True)
    return changed


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``arn`` to the ``lambda-coverage-layer`` command line."""
    parser = subparsers.add_parser(
        "arn", help="print the published layer's ARN for a region", description=__doc__
    )
    parser.add_argument("--region", required=True)
    parser.add_argument("--architecture", choices=sorted(MACHINES), required=True)
    parser.add_argument("--python", choices=SUPPORTED_PYTHONS, default=SUPPORTED_PYTHONS[-1])
    parser.add_argument("--version", default="latest", help="a release (0.1.0) or latest")
    parser.add_argument(
        "--manifest", type=Path, help="read this publishing manifest instead of SSM"
    )
    parser.add_argument("--ssm-prefix", default=SSM_PREFIX)
    return parser


def run(args: argparse.Namespace, *, ssm: SsmClient | None = None) -> int:
    """Print the ARN; 0 found, 1 not published there, 2 bad usage."""
    if args.manifest is not None:
        try:
            layers = read_manifest(args.manifest)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        entry = layers.get(args.architecture)
        found = entry.regions.get(args.region) if entry else None
        if found is None or args.version not in ("latest", found.package_version):
            print(
                f"error: {args.manifest} has no {args.architecture} layer "
                f"{args.version} in {args.region}",
                file=sys.stderr,
            )
            return EXIT_NOT_FOUND
        print(found.arn)
        return EXIT_OK
    if ssm is None:
        import boto3

        ssm = boto3.client("ssm", region_name=args.region)
    name = parameter_name(args.ssm_prefix, args.architecture, args.python, args.version)
    value = read_parameter(ssm, name)
    if value is None:
        print(
            f"error: no parameter {name} in {args.region}: the layer is not published (or its "
            "canary has not passed) there; see the release's layers.json for the regions",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    print(value)
    return EXIT_OK
