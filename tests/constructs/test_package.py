"""The constructs package is importable and versioned."""

import re

from coverage_cdk_constructs.__about__ import __version__


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
