"""Upload to S3 with a time budget, backoff with jitter, and no pointless retries.

boto3 is imported only here, only when a flush has something to send: the
Lambda runtime provides it, and importing it at cold start would cost every
function ~100 ms it may never need. One client per process. The endpoint is
boto3's own business (``AWS_ENDPOINT_URL_S3``), so the same code talks to
moto on a laptop and to S3 in Lambda.

Errors fall into four kinds. Transient ones (throttling, 5xx, read
timeouts, a connection closed mid-answer) are retried with exponential
backoff and full jitter while the budget lasts. Configuration errors (access
denied, no such bucket, no credentials) cannot heal by retrying: they are not
retried, and uploads pause for a while so that every invocation does not pay
for the same failure. Connection errors (nothing answers at the endpoint)
are not retried either, and pause uploads for a shorter time that grows while
they last (5 s, 10 s, ... up to 5 minutes). Anything else the service rejects
is not retried.

No attempt may outlast the deadline it is given: each runs on a client
whose connect and read timeouts fit in the time left (a few clients at most,
one per step of :data:`ATTEMPT_CAPS`).
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
#: After a connection error, uploads pause for this long, doubling while they
#: go on failing, up to :data:`CONFIG_ERROR_PAUSE` (seconds).
CONNECTION_ERROR_PAUSE = 5.0
#: The longest one attempt may take (connect plus read), in steps: an attempt
#: gets the largest step that fits in the time left.
ATTEMPT_CAPS = (0.2, 0.5, 1.0, 2.0, 5.0, 20.0)
_BASE_DELAY = 0.1
_MAX_DELAY = 2.0


class UploadFailed(Exception):
    """An upload did not succeed: ``kind`` is ``config``, ``connection``, ``transient`` or
    ``rejected``."""

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
        self._clients: dict[float, S3Client] = {}
        self._lock = threading.Lock()
        self.paused_until = 0.0
        self.pause_reason: str | None = None
        #: How long the next connection error pauses uploads.
        self._connection_pause = CONNECTION_ERROR_PAUSE

    @property
    def paused(self) -> bool:
        """Whether uploads are paused after a configuration or connection error."""
        return time.monotonic() < self.paused_until

    def client(self, time_left: float | None = None) -> S3Client:
        """An S3 client whose attempts fit in ``time_left`` seconds (the budget when None)."""
        fits = [cap for cap in ATTEMPT_CAPS if cap <= (time_left or self.timeout)]
        cap = fits[-1] if fits else ATTEMPT_CAPS[0]
        with self._lock:
            if cap not in self._clients:
                import boto3
                from botocore.config import Config

                config = Config(
                    # Connect and read share the cap: together they never outlast it.
                    connect_timeout=min(max(0.5, min(3.0, self.timeout / 4)), cap / 2),
                    read_timeout=min(max(1.0, min(10.0, self.timeout / 2)), cap / 2),
                    # We retry ourselves, within our own budget.
                    retries={"max_attempts": 1, "mode": "standard"},
                )
                kwargs: dict[str, Any] = {"config": config}
                if self.region and self.region != "unknown-region":
                    kwargs["region_name"] = self.region
                # A session of our own: the function's default session (its
                # credentials, its event hooks) is the function's business.
                client = boto3.session.Session().client("s3", **kwargs)
                client.meta.events.register("before-send.s3.PutObject", _no_expect_continue)
                self._clients[cap] = client
            return self._clients[cap]

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
                self.client(deadline - time.monotonic()).put_object(
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
                self._connection_pause = CONNECTION_ERROR_PAUSE
                return UploadReceipt(key=key, size=len(body), attempts=attempt, elapsed_ms=elapsed)
            if failure.kind == "config":
                self.paused_until = time.monotonic() + CONFIG_ERROR_PAUSE
                self.pause_reason = str(failure)
                raise failure
            if failure.kind == "connection":
                self.paused_until = time.monotonic() + self._connection_pause
                self.pause_reason = str(failure)
                self._connection_pause = min(CONFIG_ERROR_PAUSE, self._connection_pause * 2)
                raise failure
            if failure.kind != "transient":
                raise failure
            delay = random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))
            if time.monotonic() + delay >= deadline:
                raise failure
            time.sleep(delay)


def _no_expect_continue(request: Any, **_: Any) -> None:
    # botocore asks S3 to accept a PutObject's body first (Expect: 100-continue)
    # and waits up to two seconds, whatever the timeouts, for an endpoint that
    # never answers. A data file is a few dozen kilobytes: send it at once.
    request.headers.pop("Expect", None)


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
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProxyConnectionError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return type(exc).__name__, "config"
    # Nothing answered at all: retrying at once would only wait again.
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ProxyConnectionError):
        return type(exc).__name__, "connection"
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return type(exc).__name__, "transient"
    return type(exc).__name__, "rejected"
