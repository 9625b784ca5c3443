"""Each package's version is one number: what it says, what is installed, what its tool prints."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# distribution name, import name, package folder
PACKAGES = [
    ("lambda-coverage-wrapper", "coverage_wrapper", "coverage-wrapper"),
    ("lambda-coverage-combiner", "coverage_combiner", "coverage-combiner"),
    ("lambda-coverage-constructs", "coverage_cdk_constructs", "coverage-cdk-constructs"),
]


@pytest.mark.parametrize(("distribution", "module", "folder"), PACKAGES)
def test_installed_metadata_carries_the_source_version(
    distribution: str, module: str, folder: str
) -> None:
    about = importlib.import_module(f"{module}.__about__")
    # The wheel's version comes from __about__ through [tool.hatch.version]: a
    # wrong path there, or a second version string, shows up as a mismatch.
    assert importlib.metadata.version(distribution) == about.__version__
    assert str(Version(about.__version__)) == about.__version__
    assert about.__file__ is not None
    source = ROOT / "packages" / folder / "src" / module / "__about__.py"
    assert Path(about.__file__).resolve() == source


@pytest.mark.parametrize(("distribution", "module", "folder"), PACKAGES)
def test_changelog_starts_with_unreleased(distribution: str, module: str, folder: str) -> None:
    changelog = (ROOT / "packages" / folder / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = [line for line in changelog.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Unreleased"
    assert f"{distribution}-v" in changelog  # names the tag a release gets


def test_the_combiner_tool_prints_its_package_version() -> None:
    from coverage_combiner.__about__ import __version__

    tool = Path(sys.executable).parent / "lambda-coverage"  # the installed console script
    shown = subprocess.run(
        [str(tool), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.split() == ["lambda-coverage", __version__]
