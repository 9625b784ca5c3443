"""The function process's own uploads (without the layer's extension) and the bucket probe."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from coverage_wrapper.config import WrapperConfig
from coverage_wrapper.data_labels import probe_key
from coverage_wrapper.delivery import deliver_spool, log_failure
from coverage_wrapper.logs import log
from coverage_wrapper.spool import Spool
from coverage_wrapper.status import FlushRecord, ProcessStatus, utc_now
from coverage_wrapper.uploader import S3Uploader, UploadFailed

#: Seconds an upload may take in a call without a Lambda context.
NO_CONTEXT_BUDGET = 5.0
#: Seconds kept back from the function's remaining time: an upload must never
#: push the invocation into its timeout.
DEADLINE_MARGIN = 0.5
#: How long a bucket probe result of the health check is reused (seconds).
PROBE_CACHE_SECONDS = 300.0


class SessionUploads:
    """Uploads what waits in the spool, within the time an invocation has left."""

    def __init__(self, config: WrapperConfig, spool: Spool, status: ProcessStatus) -> None:
        self.config = config
        self.spool = spool
        self.status = status
        self._uploader: S3Uploader | None = None
        self._probe: tuple[float, dict[str, Any]] | None = None

    def uploader(self) -> S3Uploader:
        """The process's uploader (no boto3 import until it uploads)."""
        if self._uploader is None:
            self._uploader = S3Uploader(
                self.config.s3_bucket or "",
                timeout=self.config.upload_timeout,
                region=self.config.region,
            )
        return self._uploader

    @property
    def pause_reason(self) -> str | None:
        """Why uploads are paused, if they are (never creates the uploader)."""
        uploader = self._uploader
        if uploader is not None and uploader.paused:
            return uploader.pause_reason
        return None

    def budget(self, context: Any) -> float:
        """Seconds an upload may take in the invocation of ``context``."""
        budget = self.config.upload_timeout
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            with contextlib.suppress(TypeError, ValueError):
                budget = min(budget, float(remaining()) / 1000 - DEADLINE_MARGIN)
        else:
            # No Lambda context (a local call, a unit test): nothing says how
            # long the caller may wait, so not the whole upload timeout.
            budget = min(budget, NO_CONTEXT_BUDGET)
        return max(0.0, budget)

    def upload_pending(self, deadline: float, key: str, size: int) -> FlushRecord:
        """Upload the spool's files before ``deadline``; the record tells how ``key`` fared."""
        if not self.config.s3_bucket:
            return _kept(key, size, "COVERAGE_S3_BUCKET is not set")
        uploader = self.uploader()
        if uploader.paused:
            return _kept(key, size, f"uploads paused after: {uploader.pause_reason}")
        delivery = deliver_spool(self.spool, uploader, deadline)
        failure = delivery.failure
        with self.status.lock:
            self.status.uploaded_files += len(delivery.sent)
            self.status.failed_uploads += 1 if failure else 0
        if failure is not None:
            log_failure(failure, self.config.s3_bucket, s3_key=key)
            return FlushRecord(outcome="failed", s3_key=key, bytes=size, error=str(failure))
        mine = next((r for r in delivery.sent if r.key == key), None)
        if mine is None:
            log(
                logging.WARNING,
                "No time left to upload coverage data; kept in the spool",
                s3_key=key,
            )
            return _kept(key, size, "no time left in the upload budget")
        log(
            logging.INFO,
            "Coverage file uploaded successfully",
            s3_key=key,
            file_size=mine.size,
            upload_time_ms=round(delivery.upload_time_ms, 1),
            files=len(delivery.sent),
        )
        return FlushRecord(
            outcome="uploaded",
            s3_key=key,
            bytes=mine.size,
            upload_time_ms=round(mine.elapsed_ms, 1),
        )

    def probe_bucket(self) -> dict[str, Any]:
        """Check, at most every few minutes, that the bucket accepts a write.

        The probe goes where this function's data goes (:func:`probe_key`), so
        a grant of the function's own keys allows it; its failure never pauses
        data uploads.
        """
        now = time.monotonic()
        if self._probe is not None and now - self._probe[0] < PROBE_CACHE_SECONDS:
            return self._probe[1]
        if not self.config.s3_bucket:
            result: dict[str, Any] = {"writable": False, "error": "COVERAGE_S3_BUCKET is not set"}
        else:
            key = probe_key(self.config)
            try:
                # A refused probe says the bucket is unhealthy; it must not stop
                # the data uploads, which a narrower grant may well allow.
                receipt = self.uploader().put(
                    key,
                    b"ok",
                    {"probe": "true"},
                    deadline=now + min(5.0, self.config.upload_timeout),
                    pauses=False,
                )
                result = {"writable": True, "s3_key": key, "time_ms": round(receipt.elapsed_ms, 1)}
            except UploadFailed as exc:
                result = {"writable": False, "error": str(exc), "error_code": exc.code}
        result["checked_at"] = utc_now()
        self._probe = (now, result)
        return result


def _kept(key: str, size: int, why: str) -> FlushRecord:
    """The record of a snapshot left in the spool for a later upload, and ``why``."""
    return FlushRecord(outcome="spooled", s3_key=key, bytes=size, error=why)
