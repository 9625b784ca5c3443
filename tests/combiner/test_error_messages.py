"""Errors are one short message that names the problem and the fix, whatever the data holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from coverage_combiner.cli import EXIT_ERROR, main
from coverage_combiner.errors import MissingSourceError
from tests.combiner.conftest import key, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The longest an error line may be, however many names the data holds.
MAX_MESSAGE = 2_000


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("lambda-coverage: error:")]


def test_two_thousand_unknown_functions_give_a_short_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Longer than any Lambda function's name (64): cut short in the message.
    functions = [f"fn-{n:04d}-{'x' * 100}" for n in range(2_000)]
    source = write_data(
        tmp_path / "in" / "many.coverage",
        lines={f"{name}@1": {"app.py": {1}} for name in functions},
    )
    empty = tmp_path / "src"
    empty.mkdir()
    out = tmp_path / "out"
    args = ["combine", str(source), "-o", str(out), "--format", "xml,json", "-q"]
    assert main([*args, "--source-root", str(empty)]) == EXIT_ERROR
    [message] = errors(capsys.readouterr().err)
    assert len(message) < MAX_MESSAGE
    assert "the source of 2000 measured file(s) is not found" in message
    # A few functions named (their names cut short), the rest counted, the fix, the full list.
    assert message.count("the source of function") == 3
    assert "and 1997 more functions whose folder was not found" in message
    assert "--source-root FUNCTION=PATH" in message
    assert 'the JSON summary\'s "sources"' in message
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert sorted(summary["sources"]) == functions


def test_the_message_of_any_size_stays_bounded() -> None:
    long_path = "/" + "p" * 100_000
    error = MissingSourceError([long_path] * 50, [f"the source of {'f' * 50_000} ..."] * 500)
    assert len(str(error)) < MAX_MESSAGE
    assert "and 47 more" in str(error)
    assert error.missing == [long_path] * 50
    assert len(error.functions) == 500


def test_a_source_that_is_the_output_folder_is_named_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_data(data / key(), lines={"orders@LATEST": {"app.py": {1}}})
    for source in (data, data / "coverage"):
        assert main(["combine", str(source), "-o", str(data), "-q"]) == EXIT_ERROR
        assert errors(capsys.readouterr().err) == [
            f"lambda-coverage: error: the source {str(source)!r} is the output folder "
            f"{str(data)!r} or inside it: a combine never reads its own outputs back, so nothing "
            "there would be read; write the reports to another folder (a sibling, such as "
            "reports/) or combine from the folder that holds the data"
        ]
    # Outputs inside the source are fine: they are left out of the inputs.
    reports = ["-o", str(data / "reports"), "--format", "data,json", "-q"]
    assert main(["combine", str(data), *reports]) == 0


def test_an_s3_source_under_the_output_prefix_is_named_plainly(
    s3: S3Client, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"s3://{bucket}/coverage"
    assert main(["combine", source, "-o", f"s3://{bucket}/coverage/", "-q"]) == EXIT_ERROR
    assert errors(capsys.readouterr().err) == [
        f"lambda-coverage: error: the source {source!r} is the output prefix 'coverage/' or "
        "inside it: a combine never reads its own outputs back, so nothing there would be read; "
        "write the reports to another folder (a sibling, such as reports/) or combine from the "
        "folder that holds the data"
    ]
