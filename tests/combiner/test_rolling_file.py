"""The rolling data file of the Lambda handler keeps what it accumulated, whatever arrives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from coverage import CoverageData

from coverage_combiner.lambda_handler import ROLLING_NAME, handler
from tests.combiner.conftest import key, read_data, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROLLING = f"coverage-combined/{ROLLING_NAME}"
#: A data file of billing version 1 (the key is the identity: its contexts say billing@1).
BILLING = key("billing", "1", pid=3)


def orders_key(pid: int) -> str:
    """A key of orders version 1, the function and version the contexts name."""
    return key(version="1", pid=pid)


@pytest.fixture
def lambda_bucket(monkeypatch: pytest.MonkeyPatch, bucket: str) -> str:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "coverage/")
    monkeypatch.setenv("COVERAGE_COMBINED_PREFIX", "coverage-combined/")
    return bucket


def upload(s3: S3Client, bucket: str, tmp_path: Path, object_key: str, **data: object) -> None:
    local = write_data(tmp_path / "staging" / object_key, **data)  # type: ignore[arg-type]
    s3.put_object(Bucket=bucket, Key=object_key, Body=local.read_bytes())


def created(*keys: str) -> dict[str, object]:
    return {
        "Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k}}} for k in keys]
    }


def rolling(s3: S3Client, bucket: str, tmp_path: Path) -> tuple[dict[str, set[int]], set[str]]:
    local = tmp_path / "rolling-read.coverage"
    local.write_bytes(s3.get_object(Bucket=bucket, Key=ROLLING)["Body"].read())
    lines, _, contexts = read_data(local)
    return lines, contexts


def rolling_arcs(s3: S3Client, bucket: str, tmp_path: Path) -> dict[str, set[tuple[int, int]]]:
    local = tmp_path / "rolling-arcs.coverage"
    local.write_bytes(s3.get_object(Bucket=bucket, Key=ROLLING)["Body"].read())
    return read_data(local)[1]


def test_line_data_newcomers_join_the_accumulated_branch_data(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    upload(
        s3, lambda_bucket, tmp_path, orders_key(1), arcs={"orders@1": {"app.py": {(-1, 1), (1, 2)}}}
    )
    assert handler(created(orders_key(1)), None)["merged"] == [
        f"s3://{lambda_bucket}/{orders_key(1)}"
    ]
    # Two line-data files outnumber the one rolling file of branch data: no matter.
    upload(s3, lambda_bucket, tmp_path, orders_key(2), lines={"orders@1": {"app.py": {5}}})
    upload(s3, lambda_bucket, tmp_path, BILLING, lines={"billing@1": {"bill.py": {6}}})

    result = handler(created(orders_key(2), BILLING), None)

    assert result["merged"] == [
        f"s3://{lambda_bucket}/{orders_key(2)}",
        f"s3://{lambda_bucket}/{BILLING}",
    ]
    assert result["rejected"] == []
    assert rolling_arcs(s3, lambda_bucket, tmp_path) == {
        "app.py": {(-1, 1), (1, 2), (-5, 5)},
        "bill.py": {(-6, 6)},
    }
    assert rolling(s3, lambda_bucket, tmp_path) == (
        {"app.py": {1, 2, 5}, "bill.py": {6}},
        {"orders@1", "billing@1"},
    )


def test_an_object_gone_before_its_event_is_reported_and_the_rest_merges(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    upload(s3, lambda_bucket, tmp_path, orders_key(1), lines={"orders@1": {"app.py": {1}}})
    gone = orders_key(2)

    result = handler(created(gone, orders_key(1)), None)

    assert result["merged"] == [f"s3://{lambda_bucket}/{orders_key(1)}"]
    assert result["rejected"] == [
        {
            "input": f"s3://{lambda_bucket}/{gone}",
            "reason": "no longer in the bucket (deleted or expired after its event)",
        }
    ]
    assert rolling(s3, lambda_bucket, tmp_path) == ({"app.py": {1}}, {"orders@1"})


def test_a_bad_newcomer_is_named_and_merged_with_nothing(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    upload(s3, lambda_bucket, tmp_path, orders_key(1), lines={"orders@1": {"app.py": {1}}})
    s3.put_object(Bucket=lambda_bucket, Key=orders_key(2), Body=b"not sqlite")

    result = handler(created(orders_key(1), orders_key(2)), None)

    assert result["merged"] == [f"s3://{lambda_bucket}/{orders_key(1)}"]
    assert result["rejected"] == [
        {
            "input": f"s3://{lambda_bucket}/{orders_key(2)}",
            "reason": "not a coverage.py data file: not an SQLite database",
        }
    ]
    # The input itself is left as it was.
    assert s3.get_object(Bucket=lambda_bucket, Key=orders_key(2))["Body"].read() == b"not sqlite"


def test_an_empty_rolling_file_of_an_earlier_version_does_not_refuse_branch_data(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    # Earlier versions wrote an empty rolling file, marked as line data, when an
    # event's objects were all gone; branch data was refused from then on.
    empty = tmp_path / "empty.coverage"
    data = CoverageData(basename=str(empty))
    data.add_lines({})
    data.write()
    s3.put_object(Bucket=lambda_bucket, Key=ROLLING, Body=empty.read_bytes())
    upload(
        s3, lambda_bucket, tmp_path, orders_key(1), arcs={"orders@1": {"app.py": {(-1, 1), (1, 3)}}}
    )

    result = handler(created(orders_key(1)), None)

    assert result["merged"] == [f"s3://{lambda_bucket}/{orders_key(1)}"]
    assert result["rejected"] == []
    assert rolling_arcs(s3, lambda_bucket, tmp_path) == {"app.py": {(-1, 1), (1, 3)}}


def test_a_first_event_naming_only_a_missing_object_writes_nothing(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    gone = orders_key(1)

    result = handler(created(gone), None)

    assert result == {
        "merged": [],
        "ignored": [],
        "rejected": [
            {
                "input": f"s3://{lambda_bucket}/{gone}",
                "reason": "no longer in the bucket (deleted or expired after its event)",
            }
        ],
        "attempts": 0,
    }
    assert "Contents" not in s3.list_objects_v2(Bucket=lambda_bucket, Prefix="coverage-combined/")
    # The first data that does arrive decides the kind: branch data here.
    upload(s3, lambda_bucket, tmp_path, orders_key(2), arcs={"orders@1": {"app.py": {(-1, 2)}}})
    assert handler(created(orders_key(2)), None)["rejected"] == []
    assert rolling_arcs(s3, lambda_bucket, tmp_path) == {"app.py": {(-1, 2)}}


def test_an_event_whose_objects_are_all_refused_leaves_the_rolling_file_alone(
    s3: S3Client, lambda_bucket: str, tmp_path: Path
) -> None:
    upload(s3, lambda_bucket, tmp_path, orders_key(1), lines={"orders@1": {"app.py": {1}}})
    handler(created(orders_key(1)), None)
    before = s3.head_object(Bucket=lambda_bucket, Key=ROLLING)["ETag"]
    s3.put_object(Bucket=lambda_bucket, Key=orders_key(2), Body=b"not sqlite")

    result = handler(created(orders_key(2)), None)

    assert result["merged"] == []
    assert result["attempts"] == 0
    assert [r["input"] for r in result["rejected"]] == [f"s3://{lambda_bucket}/{orders_key(2)}"]
    assert s3.head_object(Bucket=lambda_bucket, Key=ROLLING)["ETag"] == before
