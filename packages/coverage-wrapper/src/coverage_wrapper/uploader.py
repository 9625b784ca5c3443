"""Upload to S3 with a time budget, backoff with jitter, and no pointless retries.

boto3 is imported only here, only when a flush has something to send: the
Lambda runtime provides it, and importing it at cold start would cost every
function ~100 ms it may never need. One client per process. The endpoint is
boto3's own business (``AWS_ENDPOINT_URL_S3``), so the same code talks to
moto on a laptop and to S3 in Lambda.

Errors fall into four kinds (:data:`FailureKind`). Transient ones
(throttling, 5xx, read timeouts, a connection closed mid-answer: botocore's
own retry classification, ``botocore.retries.standard``) are retried with
exponential backoff and full jitter while the budget lasts. Configuration
errors (access denied, no such bucket, no credentials) cannot heal by
retrying: they are not retried. Connection errors (nothing answers at the
endpoint) are not retried either. Anything else the service rejects is not
retried.

Every kind but ``rejected`` then pauses uploads (:data:`PAUSES`), so that
no invocation after the first pays for the same outage: a configuration
error for 5 minutes, a connection error for 5 s doubling to 5 minutes while
it lasts, a transient error for 1 s doubling to 1 minute. A success ends the
growth. A caller that must try anyway (the extension at SHUTDOWN) ignores
the pause. The health check's probe never pauses (``put(..., pauses=False)``):
its object is not data, and its failure must not hold the data back.

No attempt may outlast the deadline it is given: each runs on a client
whose connect and read timeouts fit in the time left (a few clients at most,
one per step of :data:`ATTEMPT_CAPS`).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

#: Why an upload failed: see the module's docstring.
FailureKind = Literal["config", "connection", "transient", "rejected"]

#: Errors that are ours to know. botocore's retry classification says only
#: what may succeed if tried again; these cannot, and each means that the
#: bucket, its policy or the function's credentials need a fix. They pause
#: uploads (:data:`CONFIG_ERROR_PAUSE`) instead of every invocation paying
#: for the same failure, and they are logged as errors, not warnings.
CONFIG_ERROR_CODES: Final = frozenset(
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


@dataclass(frozen=True)
class Pause:
    """How long uploads pause after a failure: ``first``, doubling while it recurs, up to
    ``longest`` (seconds)."""

    first: float
    longest: float


#: After a configuration error, uploads pause for this long (seconds).
CONFIG_ERROR_PAUSE: Final = 300.0
#: After a connection error, uploads pause for this long, doubling while they
#: go on failing, up to :data:`CONFIG_ERROR_PAUSE` (seconds).
CONNECTION_ERROR_PAUSE: Final = 5.0
#: After a transient error that outlasted the budget's retries (a 5xx or
#: throttling outage), uploads pause for this long, doubling up to a minute:
#: short, because such outages usually are, and S3 asks for backing off.
TRANSIENT_ERROR_PAUSE: Final = 1.0
#: The pause after each kind of failure (``rejected`` does not pause: it is
#: about one object, not about S3).
PAUSES: Final[dict[FailureKind, Pause]] = {
    "config": Pause(CONFIG_ERROR_PAUSE, CONFIG_ERROR_PAUSE),
    "connection": Pause(CONNECTION_ERROR_PAUSE, CONFIG_ERROR_PAUSE),
    "transient": Pause(TRANSIENT_ERROR_PAUSE, 60.0),
}
#: The longest one attempt may take (connect plus read), in steps: an attempt
#: gets the largest step that fits in the time left.
ATTEMPT_CAPS = (0.2, 0.5, 1.0, 2.0, 5.0, 20.0)
_BASE_DELAY = 0.1
_MAX_DELAY = 2.0


class UploadFailed(Exception):
    """An upload did not succeed, for a reason of ``kind``."""

    def __init__(self, message: str, *, kind: FailureKind, code: str, attempts: int) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
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

    def __init__(
        self,
        bucket: str,
        *,
        timeout: float,
        region: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        self.timeout = timeout
        self.region = region
        #: The clock of deadlines and pauses (seconds; tests hold their own).
        self.clock = clock
        self._clients: dict[float, S3Client] = {}
        self._lock = threading.Lock()
        self.paused_until = 0.0
        self.pause_reason: str | None = None
        #: How long the next failure of each kind pauses uploads.
        self._next_pause: dict[FailureKind, float] = {}

    @property
    def paused(self) -> bool:
        """Whether uploads are paused after a failure (see :data:`PAUSES`)."""
        return self.clock() < self.paused_until

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
                    # We retry ourselves, within our own budget. (``max_attempts``
                    # counts retries after the first try: 1 made every attempt two.)
                    retries={"total_max_attempts": 1, "mode": "standard"},
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
        self,
        key: str,
        body: bytes,
        metadata: dict[str, str],
        *,
        deadline: float,
        pauses: bool = True,
    ) -> UploadReceipt:
        """Put one object, retrying transient errors until ``deadline`` (on :attr:`clock`).

        A failure pauses uploads (:data:`PAUSES`) unless ``pauses`` is False:
        the health probe's object says nothing about the data's.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                self.client(deadline - self.clock()).put_object(
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
                elapsed = (self.clock() - started) * 1000
                self._next_pause.clear()
                return UploadReceipt(key=key, size=len(body), attempts=attempt, elapsed_ms=elapsed)
            if failure.kind == "transient":
                delay = random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))
                if self.clock() + delay < deadline:
                    time.sleep(delay)
                    continue
            raise self._paused_by(failure) if pauses else failure

    def _paused_by(self, failure: UploadFailed) -> UploadFailed:
        """Pause uploads after ``failure`` as :data:`PAUSES` says; return it."""
        pause = PAUSES.get(failure.kind)
        if pause is not None:
            seconds = self._next_pause.get(failure.kind, pause.first)
            self.paused_until = self.clock() + seconds
            self.pause_reason = str(failure)
            self._next_pause[failure.kind] = min(pause.longest, seconds * 2)
        return failure


def _no_expect_continue(request: Any, **_: Any) -> None:
    # botocore asks S3 to accept a PutObject's body first (Expect: 100-continue)
    # and waits up to two seconds, whatever the timeouts, for an endpoint that
    # never answers. A data file is a few dozen kilobytes: send it at once.
    request.headers.pop("Expect", None)


def _classify_client_error(exc: Any) -> tuple[str, FailureKind]:
    from botocore.retries.standard import RetryContext

    error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(error.get("Code") or "Unknown")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in CONFIG_ERROR_CODES or status in (401, 403):
        return code, "config"
    context = RetryContext(
        attempt_number=1, parsed_response=exc.response, http_response=_Status(status)
    )
    # A 429 whatever its code: botocore's own check of it (ThrottlingStatusCodeChecker)
    # is newer than the boto3 some Lambda runtimes provide.
    if status == 429 or _retryable(context):
        return code, "transient"
    return code, "rejected"


def _classify_botocore_error(exc: Exception) -> tuple[str, FailureKind]:
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProxyConnectionError,
    )
    from botocore.retries.standard import RetryContext

    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return type(exc).__name__, "config"
    # Nothing answered at all (botocore would retry these): retrying at once
    # would only wait again, so they pause uploads instead.
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ProxyConnectionError):
        return type(exc).__name__, "connection"
    if _retryable(RetryContext(attempt_number=1, caught_exception=exc)):
        return type(exc).__name__, "transient"
    return type(exc).__name__, "rejected"


@dataclass(frozen=True)
class _Status:
    """The part of an HTTP response botocore's retry checks read."""

    status_code: int


def _retryable(context: Any) -> bool:
    """Whether botocore's standard retry mode calls this a transient or throttling error."""
    from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

    return bool(
        TransientRetryableChecker().is_retryable(context)
        or ThrottledRetryableChecker().is_retryable(context)
    )
