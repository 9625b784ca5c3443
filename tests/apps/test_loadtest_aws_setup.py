"""``--target aws`` naming a stack that does not exist says so in one line.

(No region and no credentials: tests/apps/test_stack_loadtest.py.)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from test_stack import loadtest
from test_stack.s3_server import moto_s3_server


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An AWS setup with nothing in it: no region, no credentials, no profile files."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = loadtest.main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


def test_an_unknown_stack(no_aws: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    no_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    no_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto_s3_server() as url:  # moto's server answers CloudFormation too
        no_aws.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", url)
        argv = ["--target", "aws", "--stack", "Nope", "--region", "eu-west-1"]
        code, out, err = run(argv, capsys)
    assert (code, out) == (loadtest.EXIT_USAGE, "")
    assert err.startswith(
        "--target aws cannot read stack 'Nope': An error occurred (ValidationError)"
    )
    assert err.count("\n") == 1, err
