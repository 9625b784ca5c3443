"""The combiner Lambda checks its settings at cold start and fails loudly, naming the fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from coverage_combiner.errors import CombinerError
from coverage_combiner.lambda_handler import HANDLER, Settings, handler, settings_from
from test_stack.container import Container
from test_stack.functions import LambdaFunction
from test_stack.invocations import InitFailure
from tests.combiner.conftest import key
from tests.combiner.test_s3_and_lambda import put_data, s3_event

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIXES = "COVERAGE_S3_PREFIX and COVERAGE_COMBINED_PREFIX"
FIX = (
    "give them two separate folders, such as COVERAGE_S3_PREFIX='coverage/' and "
    "COVERAGE_COMBINED_PREFIX='coverage-combined/'"
)
START = "the coverage combiner function is misconfigured, and would ignore every event: "

#: Each bad setting, and the whole message it gives (one message, the fix in it).
BAD_SETTINGS: dict[str, tuple[dict[str, str], str]] = {
    "no bucket": ({}, "COVERAGE_S3_BUCKET is not set: set it to the coverage bucket's name"),
    "empty bucket": (
        {"COVERAGE_S3_BUCKET": "  "},
        "COVERAGE_S3_BUCKET is not set: set it to the coverage bucket's name",
    ),
    "bucket as a URL": (
        {"COVERAGE_S3_BUCKET": "s3://b"},
        "COVERAGE_S3_BUCKET='s3://b' is not a bucket name: give the name alone "
        "(my-coverage-bucket), not s3://... or an ARN",
    ),
    "empty raw prefix": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_S3_PREFIX": ""},
        "COVERAGE_S3_PREFIX='' is empty, which is the whole bucket: set it to a folder "
        "(default 'coverage/'), or unset it",
    ),
    "empty combined prefix": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_COMBINED_PREFIX": "/"},
        "COVERAGE_COMBINED_PREFIX='/' is empty, which is the whole bucket: set it to a folder "
        "(default 'coverage-combined/'), or unset it",
    ),
    "equal prefixes": (
        {
            "COVERAGE_S3_BUCKET": "bkt",
            "COVERAGE_S3_PREFIX": "cov",
            "COVERAGE_COMBINED_PREFIX": "cov/",
        },
        f"{PREFIXES} are both 'cov/': {FIX}",
    ),
    "combined inside raw": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_COMBINED_PREFIX": "coverage/reports"},
        "COVERAGE_S3_PREFIX='coverage/' and COVERAGE_COMBINED_PREFIX='coverage/reports/' are "
        f"nested ('coverage/reports/' is inside 'coverage/'): {FIX}",
    ),
    "raw inside combined": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_S3_PREFIX": "coverage-combined/raw/"},
        "COVERAGE_S3_PREFIX='coverage-combined/raw/' and "
        "COVERAGE_COMBINED_PREFIX='coverage-combined/' are nested ('coverage-combined/raw/' is "
        f"inside 'coverage-combined/'): {FIX}",
    ),
    "a '..' prefix": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_S3_PREFIX": "a/../b"},
        "COVERAGE_S3_PREFIX: key prefix 'a/../b' has a '..' segment: S3 keys have no parent "
        "folder; write the folder itself, such as 'coverage/'",
    ),
    "bad key template": (
        {"COVERAGE_S3_BUCKET": "bkt", "COVERAGE_S3_KEY_TEMPLATE": "{prefix}x.coverage"},
        "COVERAGE_S3_KEY_TEMPLATE: key template '{prefix}x.coverage' is not valid: it lacks "
        "{function} {container} {pid} {seq}: every key needs {function} (whose data it is) and "
        "{container}, {pid} and {seq} (so that no two flushes write the same key); set it to "
        "the template the instrumented functions write with",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_each_bad_setting_is_one_message_with_the_fix(case: str) -> None:
    environ, problem = BAD_SETTINGS[case]
    with pytest.raises(CombinerError) as raised:
        settings_from(environ)
    assert str(raised.value) == START + problem


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(CombinerError) as raised:
        settings_from({"COVERAGE_S3_PREFIX": "x/", "COVERAGE_COMBINED_PREFIX": "x"})
    assert str(raised.value) == (
        START
        + "COVERAGE_S3_BUCKET is not set: set it to the coverage bucket's name; "
        + f"{PREFIXES} are both 'x/': {FIX}"
    )


def test_good_settings_are_read_as_folders() -> None:
    assert settings_from(
        {
            "COVERAGE_S3_BUCKET": "bkt",
            "COVERAGE_S3_PREFIX": "/raw",
            "COVERAGE_COMBINED_PREFIX": "rep",
        }
    ) == Settings("bkt", "raw/", "rep/", settings_from({"COVERAGE_S3_BUCKET": "bkt"}).key_template)
    # Siblings that share a start are not nested: folders, not text.
    assert (
        settings_from(
            {
                "COVERAGE_S3_BUCKET": "bkt",
                "COVERAGE_S3_PREFIX": "cov",
                "COVERAGE_COMBINED_PREFIX": "co",
            }
        ).raw_prefix
        == "cov/"
    )


@pytest.mark.parametrize(
    "event",
    [s3_event(key(pid=1)), {"source": "aws.events", "detail-type": "Scheduled Event"}],
    ids=["s3-event", "schedule"],
)
def test_no_event_is_processed_with_overlapping_prefixes(
    s3: S3Client,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, Any],
) -> None:
    put_data(s3, bucket, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "coverage/")
    monkeypatch.setenv("COVERAGE_COMBINED_PREFIX", "coverage/")
    with pytest.raises(CombinerError, match=f"^{START}{PREFIXES} are both 'coverage/'"):
        handler(event, None)
    # Before: the S3 event was "ignored", the schedule read nothing; now nothing ran at all.
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [key(pid=1)]


def test_a_misconfigured_function_fails_its_init_under_the_runtime(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    function = LambdaFunction(
        name="coverage-combiner",
        code_dir=code,
        handler=HANDLER,
        environment={
            "COVERAGE_S3_BUCKET": "bkt",
            "COVERAGE_S3_PREFIX": "coverage-combined/raw",
        },
    )
    container = Container(function, work_dir=tmp_path / "work")
    with pytest.raises(InitFailure) as failed:
        container.start()
    message = failed.value.payload["errorMessage"]
    assert START in message
    assert "COVERAGE_S3_PREFIX='coverage-combined/raw/' and COVERAGE_COMBINED_PREFIX=" in message
