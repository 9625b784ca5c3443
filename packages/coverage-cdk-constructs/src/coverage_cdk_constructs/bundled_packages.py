"""Where the wrapper and the combiner that go into bundles come from.

In this repository (the constructs installed editable from
``packages/coverage-cdk-constructs``) the packages beside it are used as
source, so a change to the wrapper is in the next synth. Installed from the
package index, the constructs cannot see those folders: the released wheels
``lambda-coverage-wrapper`` / ``lambda-coverage-combiner`` of the versions
below are downloaded instead (pass ``wrapper_version=`` / ``combiner_version=``
to the constructs to choose another release, or a source folder to use your
own build).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from coverage_cdk_constructs.bundle import BundleSpec, Package, PublishedPackage, SourcePackage
from coverage_cdk_constructs.lambda_platform import DEFAULT_COVERAGE_VERSIONS, SUPPORTED_PYTHONS

#: The releases these constructs were tested with.
WRAPPER_RELEASE: Final = "0.1.0"
COMBINER_RELEASE: Final = "0.1.0"

#: ``packages/`` when this file is ``packages/coverage-cdk-constructs/src/<pkg>/<module>.py``.
_PACKAGES_DIR: Final = Path(__file__).resolve().parents[3]


def monorepo_source(folder: str, import_name: str) -> Path | None:
    """The source folder of a sibling package in this repository, if there is one."""
    candidate = _PACKAGES_DIR / folder / "src" / import_name
    return candidate if (candidate / "__init__.py").is_file() else None


def wrapper_package(source: Path | None = None, version: str | None = None) -> Package:
    """The wrapper: ``source`` if given, else this repository's, else the released wheel."""
    return _package(
        "coverage-wrapper",
        "coverage_wrapper",
        "lambda-coverage-wrapper",
        source,
        version or WRAPPER_RELEASE,
        prefer_release=version is not None,
    )


def combiner_package(source: Path | None = None, version: str | None = None) -> Package:
    """The combiner: ``source`` if given, else this repository's, else the released wheel."""
    return _package(
        "coverage-combiner",
        "coverage_combiner",
        "lambda-coverage-combiner",
        source,
        version or COMBINER_RELEASE,
        prefer_release=version is not None,
    )


def _package(
    folder: str,
    import_name: str,
    project: str,
    source: Path | None,
    version: str,
    *,
    prefer_release: bool,
) -> Package:
    if source is not None:
        return SourcePackage(import_name, Path(source))
    local = None if prefer_release else monorepo_source(folder, import_name)
    if local is not None:
        return SourcePackage(import_name, local)
    return PublishedPackage(project, version)


def layer_spec(
    architecture: str,
    *,
    pythons: Sequence[str] = SUPPORTED_PYTHONS,
    coverage_versions: Mapping[str, str] | None = None,
    wrapper_source: Path | None = None,
    wrapper_version: str | None = None,
    combiner_source: Path | None = None,
    combiner_version: str | None = None,
    extensions: Sequence[Path] = (),
    bytecode: bool = True,
) -> BundleSpec:
    """What the coverage layer for ``architecture`` (``"x86_64"``/``"arm64"``) holds.

    The one definition of the layer's content: :class:`CoverageLayer` builds
    it for a stack, ``lambda-coverage-layer build`` the published zips, and
    the test stack's local runtime its ``/opt``. The wrapper (with its
    extension), the combiner (so that ``coverage_wrapper.combiner`` works in
    a function with the layer; boto3 is the runtime's), coverage.py per
    Python version, and checked-hash bytecode (``bytecode=False``: none).
    """
    return BundleSpec(
        layout="layer",
        architecture=architecture,
        pythons=tuple(pythons),
        packages=(
            wrapper_package(wrapper_source, wrapper_version),
            combiner_package(combiner_source, combiner_version),
        ),
        coverage_versions=dict(coverage_versions or DEFAULT_COVERAGE_VERSIONS),
        extensions=tuple(extensions),
        bytecode=bytecode,
    )


def combiner_spec(
    architecture: str,
    python: str,
    *,
    coverage_versions: Mapping[str, str] | None = None,
    combiner_source: Path | None = None,
    combiner_version: str | None = None,
) -> BundleSpec:
    """The combiner function's code: the combiner, the wrapper's key contract it reads
    keys with, and coverage.py for one Python version."""
    return BundleSpec(
        layout="function",
        architecture=architecture,
        pythons=(python,),
        packages=(combiner_package(combiner_source, combiner_version), wrapper_package()),
        coverage_versions=dict(coverage_versions or DEFAULT_COVERAGE_VERSIONS),
    )
