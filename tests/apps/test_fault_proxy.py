"""The fault-injecting proxy: each fault fails S3 calls the way S3 or the network would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from test_stack.faults import FAULTS, Fault, FaultProxy
from test_stack.s3_server import FAKE_CREDENTIALS, REGION, moto_s3_server, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "fault-proxy"


@pytest.fixture(scope="module")
def proxy() -> Iterator[FaultProxy]:
    """The proxy in front of a moto server holding one bucket."""
    with moto_s3_server() as url, FaultProxy(url, slow_seconds=1.0) as running:
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield running


def client(url: str) -> S3Client:
    """An S3 client without retries and with a short read timeout."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3, connect_timeout=1),
    )


def put(proxy: FaultProxy, key: str) -> None:
    """Write one object through the proxy."""
    s3 = client(proxy.url)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"data")


def test_without_a_fault_requests_reach_s3(proxy: FaultProxy) -> None:
    put(proxy, "plain")
    answer = client(proxy.url).get_object(Bucket=BUCKET, Key="plain")
    assert answer["Body"].read() == b"data"


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("internal-error", "InternalError", 500),
        ("unavailable", "ServiceUnavailable", 503),
        ("slow-down", "SlowDown", 503),
        ("no-bucket", "NoSuchBucket", 404),
        ("expired-token", "ExpiredToken", 400),
    ],
)
def test_error_faults_answer_as_s3_does(
    proxy: FaultProxy, fault: Fault, code: str, status: int
) -> None:
    before = proxy.counts[fault]
    with proxy.window(fault), pytest.raises(ClientError) as raised:
        put(proxy, f"during-{fault}")
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert proxy.counts[fault] == before + 1
    # Nothing was written, and the fault is off after its window.
    put(proxy, f"after-{fault}")
    keys = {o["Key"] for o in s3_client(proxy.url).list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"after-{fault}" in keys
    assert f"during-{fault}" not in keys


def test_a_reset_closes_the_connection(proxy: FaultProxy) -> None:
    with proxy.window("reset"), pytest.raises(ConnectionClosedError):
        put(proxy, "reset")


def test_a_slow_answer_outlasts_the_read_timeout(proxy: FaultProxy) -> None:
    with proxy.window("slow"), pytest.raises(ReadTimeoutError):
        put(proxy, "slow")


def test_an_unknown_fault_is_named(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault 'flood'; choose one of: internal-error"):
        proxy.set_fault("flood")  # type: ignore[arg-type]
    assert len(FAULTS) == 7
