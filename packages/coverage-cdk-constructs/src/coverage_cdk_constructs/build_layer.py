"""Build the coverage layer zips outside CDK: ``python -m coverage_cdk_constructs.build_layer``.

The same builder and the same content as :class:`CoverageLayer`, for
publishing: one zip per architecture in ``--output``, and ``layers.json``
describing each (file, SHA-256, the builder's fingerprint, sizes, Python
and coverage.py versions, the compiled tracer checked for each Python).
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
from coverage_cdk_constructs.errors import LayerBuildError
from coverage_cdk_constructs.lambda_platform import MACHINES, SUPPORTED_PYTHONS
from coverage_cdk_constructs.sources import layer_spec

EXIT_OK: Final = 0
EXIT_BUILD_FAILED: Final = 1
EXIT_USAGE: Final = 2
MANIFEST_NAME: Final = "layers.json"


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
            }
            for p in bundle.spec.platforms
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m coverage_cdk_constructs.build_layer",
        description="Build the Lambda Coverage layer zips (no Docker needed).",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the layers; 0 when every zip was built, 1 on a build error, 2 on bad usage."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    architectures = args.architecture or sorted(MACHINES)
    pythons = tuple(args.python or SUPPORTED_PYTHONS)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []
    for architecture in architectures:
        try:
            bundle = build_bundle(
                layer_spec(architecture, pythons=pythons), cache_dir=args.cache_dir
            )
        except LayerBuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BUILD_FAILED
        name = layer_file_name(architecture)
        shutil.copyfile(bundle.path, output / name)
        manifest.append(describe(bundle, name))
        print(f"{output / name}: {bundle.size / 1e6:.2f} MB, Python {', '.join(pythons)}")
    (output / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
