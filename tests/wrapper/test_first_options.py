"""One process, one configuration: the first handler's options win, and health says so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from coverage_wrapper import coverage_handler, health_check_handler
from tests.wrapper.conftest import lambda_context, uploads, write_module

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TWO_HANDLERS = """\
def first(event, context):
    return "first"


def second(event, context):
    return "second"
"""


def test_a_second_handlers_options_are_ignored_and_named(
    task_root: Path, bucket: str, s3: S3Client, tmp_path: Path
) -> None:
    write_module(task_root, "two.py", TWO_HANDLERS)
    import two  # type: ignore[import-not-found]

    first = coverage_handler(s3_prefix="first/")(two.first)
    second = coverage_handler(s3_prefix="second/")(two.second)
    assert first({}, lambda_context("req-1")) == "first"
    assert health_check_handler()["problems"] == []
    assert second({}, lambda_context("req-2")) == "second"
    keys = [u.key for u in uploads(s3, bucket, tmp_path)]
    assert len(keys) == 2
    assert all(key.startswith("first/") for key in keys), keys
    health = health_check_handler()
    assert health["status"] == "degraded"
    assert health["problems"] == [
        "Handlers in this process asked for different coverage options (s3_prefix); "
        "the first configuration is used for all of them"
    ]
    assert health["configuration"]["ignored_options"] == ["s3_prefix"]
    assert health["configuration"]["s3_prefix"] == "first/"
