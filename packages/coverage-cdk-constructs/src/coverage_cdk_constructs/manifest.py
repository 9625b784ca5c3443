"""The publishing manifest: every region's layer ARN, version and hash, per architecture.

One JSON file (released as ``layers.json``) holds both architectures::

    {
      "format": 1,
      "layers": {
        "x86_64": {
          "layer_name": "lambda-coverage-x86_64",
          "regions": {
            "eu-west-1": {"arn": "arn:aws:lambda:eu-west-1:123456789012:layer:...:4",
                          "version": 4, "sha256": "<hex>", "package_version": "0.1.0"}
          }
        }
      }
    }

Publishing one architecture rewrites only that architecture's regions that
were published, so both publishes (and a re-run for a failed region) can
share one file. :func:`published_versions` turns it into the
``{architecture: {region: version}}`` map that
``CoverageLayers.published(version=...)`` takes, and :func:`publisher_account`
gives its ``account=``; :func:`markdown_table` is the table the README and
the release notes include. Nothing here imports aws_cdk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: Published layers are called ``lambda-coverage-<architecture>``.
LAYER_NAME_PREFIX: Final = "lambda-coverage"
MANIFEST_FORMAT: Final = 1


def published_layer_name(architecture: str) -> str:
    """``lambda-coverage-x86_64`` or ``lambda-coverage-arm64``."""
    return f"{LAYER_NAME_PREFIX}-{architecture}"


@dataclass(frozen=True)
class RegionEntry:
    """One published layer version in one region."""

    region: str
    arn: str
    version: int
    sha256: str
    package_version: str

    def to_json(self) -> dict[str, Any]:
        """The entry as the manifest stores it (the region is its key)."""
        return {
            "arn": self.arn,
            "version": self.version,
            "sha256": self.sha256,
            "package_version": self.package_version,
        }


@dataclass(frozen=True)
class ArchitectureEntry:
    """The layer of one architecture in every region it is published in."""

    layer_name: str
    regions: Mapping[str, RegionEntry]


def read_manifest(path: Path) -> dict[str, ArchitectureEntry]:
    """The manifest at ``path`` by architecture; empty when the file does not exist."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a publishing manifest (not JSON: {error.msg})") from None
    return parse_manifest(document, source=str(path))


def parse_manifest(document: Any, *, source: str = "the manifest") -> dict[str, ArchitectureEntry]:
    """A manifest's JSON document by architecture; ``ValueError`` naming what is wrong."""
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ValueError(
            f"{source} is not a publishing manifest of format {MANIFEST_FORMAT}; "
            "write it with lambda-coverage-layer publish --manifest"
        )
    layers: dict[str, ArchitectureEntry] = {}
    for architecture, layer in document.get("layers", {}).items():
        regions = {
            region: RegionEntry(
                region=region,
                arn=str(entry["arn"]),
                version=int(entry["version"]),
                sha256=str(entry["sha256"]),
                package_version=str(entry["package_version"]),
            )
            for region, entry in layer.get("regions", {}).items()
        }
        layers[architecture] = ArchitectureEntry(
            layer_name=str(layer["layer_name"]), regions=regions
        )
    return layers


def manifest_document(layers: Mapping[str, ArchitectureEntry]) -> dict[str, Any]:
    """The JSON document of ``layers`` (sorted, so that the file diffs well)."""
    return {
        "format": MANIFEST_FORMAT,
        "layers": {
            architecture: {
                "layer_name": layers[architecture].layer_name,
                "regions": {
                    region: layers[architecture].regions[region].to_json()
                    for region in sorted(layers[architecture].regions)
                },
            }
            for architecture in sorted(layers)
        },
    }


def update_manifest(
    path: Path, architecture: str, layer_name: str, entries: Iterable[RegionEntry]
) -> dict[str, ArchitectureEntry]:
    """Write ``entries`` into the manifest at ``path`` (other regions and architectures kept).

    Also writes the Markdown table beside it (``.md``). Returns the new manifest.
    """
    layers = read_manifest(path)
    previous = layers.get(architecture)
    regions = dict(previous.regions) if previous and previous.layer_name == layer_name else {}
    regions.update({entry.region: entry for entry in entries})
    layers[architecture] = ArchitectureEntry(layer_name=layer_name, regions=regions)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest_document(layers), indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown_table(layers))
    return layers


def markdown_table(layers: Mapping[str, ArchitectureEntry]) -> str:
    """The published layers as a Markdown table: region, architecture, version, ARN, SHA-256."""
    lines = [
        "| Region | Architecture | Version | Package | ARN | SHA-256 |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    rows = sorted(
        (entry.region, architecture, entry)
        for architecture, layer in layers.items()
        for entry in layer.regions.values()
    )
    for region, architecture, entry in rows:
        lines.append(
            f"| {region} | {architecture} | {entry.version} | {entry.package_version} "
            f"| `{entry.arn}` | `{entry.sha256[:12]}` |"
        )
    return "\n".join(lines) + "\n"


def published_versions(layers: Mapping[str, ArchitectureEntry]) -> dict[str, dict[str, int]]:
    """``{architecture: {region: version}}``: ``CoverageLayers.published(version=...)``'s map."""
    return {
        architecture: {region: entry.version for region, entry in sorted(layer.regions.items())}
        for architecture, layer in sorted(layers.items())
    }


def publisher_account(layers: Mapping[str, ArchitectureEntry]) -> str:
    """The account that published the layers (from their ARNs): ``account=`` for the constructs."""
    accounts = {
        entry.arn.split(":")[4] for layer in layers.values() for entry in layer.regions.values()
    }
    if len(accounts) != 1:
        raise ValueError(
            f"the manifest's layers come from {len(accounts)} accounts "
            f"({', '.join(sorted(accounts)) or 'none'}); expected exactly one"
        )
    return accounts.pop()
