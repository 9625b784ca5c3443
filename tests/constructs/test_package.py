"""The constructs package imports without the CDK until a construct is used."""

import subprocess
import sys

import pytest

NO_CDK_CHECK = """
import sys
import coverage_cdk_constructs, coverage_cdk_constructs.bundle
import coverage_cdk_constructs.bundled_packages, coverage_cdk_constructs.cli
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("aws_cdk", "jsii", "constructs"))
assert not loaded, loaded
from coverage_cdk_constructs import CoverageLayer, CoverageBucket
assert CoverageLayer.__module__ == "coverage_cdk_constructs.layer", CoverageLayer.__module__
assert "aws_cdk" in sys.modules
"""


def test_the_package_and_its_builder_import_without_the_cdk() -> None:
    """aws_cdk (and its Node.js kernel) loads on the first construct used, not before."""
    done = subprocess.run(
        [sys.executable, "-c", NO_CDK_CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    import coverage_cdk_constructs

    with pytest.raises(AttributeError, match="CoverageLayr"):
        _ = coverage_cdk_constructs.CoverageLayr
