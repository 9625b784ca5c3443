"""Upload to S3 with a time budget, backoff with jitter, and no pointless retries.

boto3 is imported only here, only when a flush has something to send: the
Lambda runtime provides it, and importing it at cold start would cost every
function ~100 ms it may never need. One client per process. The endpoint is
boto3's own business (``AWS_ENDPOINT_URL_S3``), so the same code talks to
moto on a laptop and to S3 in Lambda.

Errors fall into three kinds. Transient ones (throttling, 5xx, timeouts,
broken connections) are retried with exponential backoff and full jitter
while the budget lasts. Configuration errors (access denied, no such bucket,
no credentials) cannot heal by retrying: they are not retried, and uploads
pause for a while so that every invocation does not pay for the same
failure. Anything else the service rejects is not retried either.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONFIG_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
        "AccountProblem",
        "ExpiredToken",
        "InvalidToken",
        "KMS.AccessDeniedException",
        "KMS.DisabledException",
    }
)
TRANSIENT_ERROR_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)

#: After a configuration error, uploads pause for this long (seconds).
CONFIG_ERROR_PAUSE = 300.0
_BASE_DELAY = 0.1
_MAX_DELAY = 2.0


class UploadFailed(Exception):
    """An upload did not succeed. ``kind`` is ``config``, ``transient`` or ``rejected``."""

    def __init__(self, message: str, *, kind: str, code: str, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.attempts = attempts


@dataclass(frozen=True)
class UploadReceipt:
    """What one successful upload cost."""

    key: str
    size: int
    attempts: int
    elapsed_ms: float


class S3Uploader:
    """Puts data files into one bucket."""

    def __init__(self, bucket: str, *, timeout: float, region: str | None = None) -> None:
        self.bucket = bucket
        self.timeout = timeout
        self.region = region
        self._client: S3Client | None = None
        self._lock = threading.Lock()
        self.paused_until = 0.0
        self.pause_reason: str | None = None

    @property
    def paused(self) -> bool:
        """Whether uploads are paused after a configuration error."""
        return time.monotonic() < self.paused_until

    def client(self) -> S3Client:
        """The process's S3 client, created on first use."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=max(0.5, min(3.0, self.timeout / 4)),
                    read_timeout=max(1.0, min(10.0, self.timeout / 2)),
                    # We retry ourselves, within our own budget.
                    retries={"max_attempts": 1, "mode": "standard"},
                )
                kwargs: dict[str, Any] = {"config": config}
                if self.region and self.region != "unknown-region":
                    kwargs["region_name"] = self.region
                # A session of our own: the function's default session (its
                # credentials, its event hooks) is the function's business.
                self._client = boto3.session.Session().client("s3", **kwargs)
            return self._client

    def put(
        self, key: str, body: bytes, metadata: dict[str, str], *, deadline: float
    ) -> UploadReceipt:
        """Put one object, retrying transient errors until ``deadline`` (monotonic)."""
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                self.client().put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    Metadata=metadata,
                    ContentType="application/vnd.sqlite3",
                )
            except ClientError as exc:
                code, kind = _classify_client_error(exc)
                message = f"S3 answered {code} for s3://{self.bucket}/{key}"
                failure = UploadFailed(message, kind=kind, code=code, attempts=attempt)
            except BotoCoreError as exc:
                code, kind = _classify_botocore_error(exc)
                failure = UploadFailed(
                    f"{type(exc).__name__}: {exc}", kind=kind, code=code, attempts=attempt
                )
            else:
                elapsed = (time.monotonic() - started) * 1000
                return UploadReceipt(key=key, size=len(body), attempts=attempt, elapsed_ms=elapsed)
            if failure.kind == "config":
                self.paused_until = time.monotonic() + CONFIG_ERROR_PAUSE
                self.pause_reason = str(failure)
                raise failure
            if failure.kind != "transient":
                raise failure
            delay = random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))
            if time.monotonic() + delay >= deadline:
                raise failure
            time.sleep(delay)


def _classify_client_error(exc: Any) -> tuple[str, str]:
    error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(error.get("Code") or "Unknown")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in CONFIG_ERROR_CODES or status in (401, 403):
        return code, "config"
    if code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500:
        return code, "transient"
    return code, "rejected"


def _classify_botocore_error(exc: Exception) -> tuple[str, str]:
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return type(exc).__name__, "config"
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return type(exc).__name__, "transient"
    return type(exc).__name__, "rejected"
