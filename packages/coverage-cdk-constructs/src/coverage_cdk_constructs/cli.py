"""``lambda-coverage-layer``: build, validate and publish the coverage layer zips, and look ARNs up.

Each subcommand is a module with two functions, listed in :data:`SUBCOMMANDS`:

- ``add_parser(subparsers) -> argparse.ArgumentParser`` adds its parser
  (``subparsers.add_parser("name", ...)``) and its options;
- ``run(args) -> int`` does the work and returns the exit code.

A subcommand's module is imported only to build the parser, so a module
whose work needs heavy imports (boto3) keeps them inside ``run``. Nothing
here imports ``aws_cdk``: building a zip never starts the CDK's Node.js kernel.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol, cast

from coverage_cdk_constructs.__about__ import __version__

EXIT_OK: Final = 0
#: A subcommand failed (a build error, an invalid zip): the message says which and why.
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
PROG: Final = "lambda-coverage-layer"

#: The subcommands' modules, in the order ``--help`` lists them.
SUBCOMMANDS: Final[tuple[str, ...]] = (
    "coverage_cdk_constructs.build_layer",
    "coverage_cdk_constructs.validate_layer",
    "coverage_cdk_constructs.publish",
    "coverage_cdk_constructs.arn_lookup",
)


class Subcommand(Protocol):
    """What a module named in :data:`SUBCOMMANDS` provides."""

    def add_parser(
        self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        """Add the subcommand's parser to ``subparsers`` and return it."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work for parsed ``args``; the exit code."""


def parser(modules: Sequence[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The command line of ``lambda-coverage-layer`` with the subcommands of ``modules``."""
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Build, check and publish the Lambda Coverage layer zips (no Docker, no CDK).",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        module = cast(Subcommand, importlib.import_module(name))
        module.add_parser(subparsers).set_defaults(run=module.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lambda-coverage-layer`` with ``argv``; the exit code (2 on bad usage)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code in (0, None) else EXIT_USAGE
    run = cast(Callable[[argparse.Namespace], int], args.run)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
