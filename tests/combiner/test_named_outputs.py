"""Outputs named after the output key: the seed's daily report, day after day."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from coverage_combiner import combine_coverage_files
from coverage_combiner.cli import EXIT_OK, EXIT_USAGE, main
from coverage_combiner.errors import NoDataError
from coverage_combiner.reader import COMBINED_OUTPUT
from tests.combiner.conftest import key, read_data, write_data
from tests.combiner.test_s3_and_lambda import put_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def daily_coverage_report(bucket: str, today: datetime) -> dict[str, object]:
    """The seed's scheduled-report example, as written there (minus the metrics call)."""
    yesterday = today - timedelta(days=1)
    prefix = f"coverage/{yesterday.strftime('%Y/%m/%d')}/"
    return combine_coverage_files(
        bucket_name=bucket,
        prefix=prefix,
        output_key=f"coverage/daily/{yesterday.strftime('%Y-%m-%d')}.json",
    )


def test_daily_reports_never_overwrite_each_other(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    put_data(s3, bucket, tmp_path, key(day="2026/11/24"), lines={"orders@$LATEST": {"app.py": {1}}})
    put_data(s3, bucket, tmp_path, key(day="2026/11/25"), lines={"orders@$LATEST": {"app.py": {2}}})
    first = daily_coverage_report(bucket, datetime(2026, 11, 25, 6))
    second = daily_coverage_report(bucket, datetime(2026, 11, 26, 6))
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="coverage/daily/")
    assert sorted(o["Key"] for o in listing["Contents"]) == [
        "coverage/daily/2026-11-24.coverage",
        "coverage/daily/2026-11-24.json",
        "coverage/daily/2026-11-24.md",
        "coverage/daily/2026-11-25.coverage",
        "coverage/daily/2026-11-25.json",
        "coverage/daily/2026-11-25.md",
    ]
    for day, result, line in (("2026-11-24", first, 1), ("2026-11-25", second, 2)):
        where = {
            kind: f"s3://{bucket}/coverage/daily/{day}{suffix}"
            for kind, suffix in (("data", ".coverage"), ("markdown", ".md"), ("json", ".json"))
        }
        assert result["outputs"] == {**where, "summary": where["json"]}
        stored = json.loads(
            s3.get_object(Bucket=bucket, Key=f"coverage/daily/{day}.json")["Body"].read()
        )
        assert stored["outputs"] == where
        assert stored["inputs"]["merged"] == 1
        data = tmp_path / f"{day}.coverage"
        body = s3.get_object(Bucket=bucket, Key=f"coverage/daily/{day}.coverage")["Body"].read()
        data.write_bytes(body)
        assert read_data(data)[0] == {os.path.abspath("app.py"): {line}}


def test_reports_under_the_data_prefix_are_never_read_back_as_inputs(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    """The seed's two examples in one bucket: daily reports under ``coverage/daily/``, then
    everything under ``coverage/`` combined into ``coverage/combined/daily-report.json``."""
    for pid, day in ((1, "2026/11/24"), (2, "2026/11/25")):
        put_data(
            s3, bucket, tmp_path, key(day=day, pid=pid), lines={"orders@$LATEST": {"a.py": {1}}}
        )
    daily_coverage_report(bucket, datetime(2026, 11, 25, 6))
    daily_coverage_report(bucket, datetime(2026, 11, 26, 6))
    for _ in range(2):  # the second run finds the first one's outputs too
        result = combine_coverage_files(
            bucket_name=bucket,
            prefix="coverage/",
            output_key="coverage/combined/daily-report.json",
        )
        assert result["inputs"]["merged"] == 2
        assert result["inputs"]["rejected"] == [
            {"input": f"s3://{bucket}/coverage/daily/{day}.coverage", "reason": COMBINED_OUTPUT}
            for day in ("2026-11-24", "2026-11-25")
        ]


def test_a_day_without_data_is_an_error_and_writes_nothing(s3: S3Client, bucket: str) -> None:
    with pytest.raises(NoDataError, match=r"no coverage data under s3://.*/coverage/2026/11/24/"):
        daily_coverage_report(bucket, datetime(2026, 11, 25, 6))
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    summary = combine_coverage_files(
        bucket_name=bucket,
        prefix="coverage/2026/11/24/",
        output_key="coverage/daily/2026-11-24.json",
        allow_empty=True,
    )
    assert summary["inputs"]["merged"] == 0


def test_the_cli_names_outputs_after_name(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_data(inputs / key(), lines={"orders@$LATEST": {"app.py": {1}}})
    out = tmp_path / "reports"
    for run in ("run-1", "run-2"):
        args = ["combine", str(inputs), "-o", str(out), "--name", run, "-q"]
        assert main([*args, "--format", "data,json,markdown"]) == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == [
        "run-1.coverage",
        "run-1.json",
        "run-1.md",
        "run-2.coverage",
        "run-2.json",
        "run-2.md",
    ]


@pytest.mark.parametrize("stem", ["a/b", "..", ""])
def test_a_bad_name_is_a_usage_error_naming_the_value_and_the_rule(
    tmp_path: Path, stem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "in"
    write_data(inputs / key(), lines={"orders@$LATEST": {"app.py": {1}}})
    out = tmp_path / "reports"
    assert main(["combine", str(inputs), "-o", str(out), "--name", stem, "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"lambda-coverage combine: error: argument --name: output name {stem!r} is not a file "
        "name: give a plain name such as 2026-01-15 (no '/', and not empty, '.' or '..')"
    )
    assert not out.exists()
