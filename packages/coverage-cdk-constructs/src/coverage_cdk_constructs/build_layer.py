"""``lambda-coverage-layer build``: the coverage layer zips, one per architecture.

The same builder and the same content as :class:`CoverageLayer`
(:func:`~coverage_cdk_constructs.bundled_packages.layer_spec`), for publishing: one
zip per architecture in ``--output``, and ``build.json`` describing each
(file, SHA-256, the builder's fingerprint, sizes, Python and coverage.py
versions, the compiled tracer checked for each Python, and which Pythons'
bytecode is in the zip or was skipped because that Python is not installed
here). ``python -m coverage_cdk_constructs.build_layer`` is the same command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from coverage_cdk_constructs.bundle import Bundle, build_bundle
from coverage_cdk_constructs.bundled_packages import layer_spec
from coverage_cdk_constructs.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from coverage_cdk_constructs.cli import main as cli_main
from coverage_cdk_constructs.errors import LayerBuildError
from coverage_cdk_constructs.lambda_platform import MACHINES, SUPPORTED_PYTHONS

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "MANIFEST_NAME", "describe", "main", "run"]

#: Not ``layers.json``: that name is the release asset mapping regions to ARNs (manifest.py).
MANIFEST_NAME: Final = "build.json"


def layer_file_name(architecture: str) -> str:
    """The published zip's name for ``architecture``."""
    return f"lambda-coverage-layer-{architecture}.zip"


def describe(bundle: Bundle, file_name: str) -> dict[str, Any]:
    """The manifest entry of one built layer."""
    return {
        "file": file_name,
        "sha256": hashlib.sha256(bundle.path.read_bytes()).hexdigest(),
        "fingerprint": bundle.fingerprint,
        "architecture": bundle.spec.architecture,
        "size": bundle.size,
        "unzipped_size": bundle.unzipped_size(),
        "pythons": {
            p.python: {
                "coverage": bundle.spec.coverage_versions[p.python],
                "tracer": f"{p.site_packages}/{p.tracer_file}",
                "bytecode": bundle.spec.bytecode and p.python not in bundle.bytecode_skipped,
            }
            for p in bundle.spec.platforms
        },
        "bytecode_skipped": list(bundle.bytecode_skipped),
    }


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The ``build`` subcommand's parser."""
    parser = subparsers.add_parser(
        "build",
        help="build the layer zips and build.json",
        description="Build the Lambda Coverage layer zips (no Docker, no CDK): one per "
        "architecture, byte-identical from the same sources.",
    )
    parser.add_argument(
        "--architecture",
        action="append",
        choices=sorted(MACHINES),
        help="repeat for several (default: all)",
    )
    parser.add_argument(
        "--python",
        action="append",
        choices=SUPPORTED_PYTHONS,
        help="Python versions to carry coverage.py for (default: all)",
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the zips")
    parser.add_argument("--cache-dir", type=Path, default=None, help="wheel and zip cache")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="ship no .pyc files (smaller, slower cold start)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the zips named by ``args``; 0 when every one was built, 1 on a build error."""
    architectures: list[str] = args.architecture or sorted(MACHINES)
    pythons = tuple(args.python or SUPPORTED_PYTHONS)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []
    for architecture in architectures:
        try:
            spec = layer_spec(architecture, pythons=pythons, bytecode=not args.no_bytecode)
            bundle = build_bundle(spec, cache_dir=args.cache_dir)
        except LayerBuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILED
        name = layer_file_name(architecture)
        shutil.copyfile(bundle.path, output / name)
        manifest.append(describe(bundle, name))
        print(f"{output / name}: {bundle.size / 1e6:.2f} MB, Python {', '.join(pythons)}")
        if bundle.bytecode_skipped:
            print(
                f"{output / name}: no bytecode for Python {', '.join(bundle.bytecode_skipped)} "
                "(not installed here: those runtimes compile the layer at cold start)",
                file=sys.stderr,
            )
    (output / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``lambda-coverage-layer build`` with ``argv`` (the options after ``build``)."""
    return cli_main(["build", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
