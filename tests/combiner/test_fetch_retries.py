"""Fetches retry only what a retry can cure; botocore retries the requests themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ResponseStreamingError

from coverage_combiner.errors import SourceError
from coverage_combiner.inputs import Input, S3Origin, fetch_bytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_a_missing_object_is_asked_for_once_and_named(s3: S3Client, bucket: str) -> None:
    requests: list[str] = []

    def count(**kwargs: Any) -> None:
        requests.append(kwargs["event_name"])

    s3.meta.events.register("before-send.s3.GetObject", count)
    origin = S3Origin(s3, bucket)
    gone = Input(f"s3://{bucket}/gone.coverage", 10, None, origin=origin)

    with pytest.raises(SourceError) as failed:
        fetch_bytes(gone, backoff=0)

    assert str(failed.value).startswith("could not be fetched: An error occurred (NoSuchKey)")
    assert len(requests) == 1


def test_a_body_that_breaks_mid_read_is_read_again(s3: S3Client, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k.coverage", Body=b"data")
    origin = S3Origin(s3, bucket)
    reads: list[int] = []

    def breaking() -> bytes:
        reads.append(1)
        if len(reads) < 3:
            raise ResponseStreamingError(error="connection broken: IncompleteRead(2 bytes)")
        return origin.read(f"s3://{bucket}/k.coverage")

    item = Input(f"s3://{bucket}/k.coverage", 4, None, breaking)
    assert fetch_bytes(item, backoff=0) == b"data"
    assert len(reads) == 3
    reads.clear()
    with pytest.raises(SourceError, match=r"^could not be fetched after 2 attempts: "):
        fetch_bytes(item, attempts=2, backoff=0)
    assert len(reads) == 2


def test_an_error_no_retry_can_cure_is_final() -> None:
    calls: list[int] = []

    def missing() -> bytes:
        calls.append(1)
        raise FileNotFoundError(2, "No such file or directory", "in/x.coverage")

    with pytest.raises(SourceError, match=r"^could not be fetched: \[Errno 2\] No such file"):
        fetch_bytes(Input("in/x.coverage", 4, None, missing), backoff=0)
    assert calls == [1]
