"""The release workflows' structure (actionlint does not install here: no wheel for it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PACKAGES = {
    "combiner": "coverage-combiner",
    "wrapper": "coverage-wrapper",
    "constructs": "coverage-cdk-constructs",
}


def _load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    # YAML 1.1 reads the key "on" as True.
    document["on"] = document.pop(True)
    for job_name, job in document["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", job_name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (job_name, step)
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[\w./-]+", step["uses"]), step["uses"]
    return document


def test_the_layer_release_publishes_with_an_oidc_role() -> None:
    workflow = _load("layer-release.yml")
    assert workflow["on"] == {"push": {"tags": ["layer-v*"]}}
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["publish"]["steps"]
    (credentials,) = [s for s in steps if s.get("uses", "").startswith("aws-actions/")]
    assert set(credentials["with"]) == {"role-to-assume", "aws-region"}
    commands = "\n".join(s.get("run", "") for s in steps)
    build = commands.index("lambda-coverage-layer build --output dist/layers")
    validate = commands.index("lambda-coverage-layer validate dist/layers/*.zip")
    assert build < validate < commands.index("lambda-coverage-layer publish")
    assert "--regions commercial" in commands
    assert "gh release upload" in commands


@pytest.mark.parametrize("short", sorted(PACKAGES))
def test_each_package_has_its_pypi_workflow(short: str) -> None:
    workflow = _load(f"pypi-{short}.yml")
    assert workflow["on"] == {"push": {"tags": [f"lambda-coverage-{short}-v*"]}}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    check = next(s for s in build["steps"] if s.get("name", "").startswith("Check the tag"))
    assert f"packages/{PACKAGES[short]}/src/" in check["run"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["steps"][-1]["uses"] == "pypa/gh-action-pypi-publish@release/v1"
