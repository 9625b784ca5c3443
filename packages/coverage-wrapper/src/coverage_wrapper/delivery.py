"""Send what waits in the spool to S3, oldest first, until the deadline.

The one upload loop of the project: the function process runs it inside an
invocation when no extension is there, and the layer's extension runs it
after the runtime has answered and at shutdown. An entry leaves the spool
only once S3 has it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from coverage_wrapper.logs import log
from coverage_wrapper.spool import Spool
from coverage_wrapper.uploader import S3Uploader, UploadFailed, UploadReceipt


@dataclass(frozen=True)
class Delivery:
    """What one pass over the spool sent, and why it stopped early if it did."""

    sent: tuple[UploadReceipt, ...]
    #: The failure that stopped the pass (the entry stays in the spool).
    failure: UploadFailed | None
    #: Entries not tried because the deadline came first.
    left: int

    @property
    def upload_time_ms(self) -> float:
        """Milliseconds spent in successful uploads."""
        return sum(receipt.elapsed_ms for receipt in self.sent)


def deliver_spool(
    spool: Spool, uploader: S3Uploader, deadline: float, *, any_process: bool = False
) -> Delivery:
    """Upload the spool's entries until ``deadline`` (monotonic) or the first failure.

    ``any_process`` takes the entries of live processes too (the extension
    uploads for every process of the sandbox).
    """
    sent: list[UploadReceipt] = []
    entries = spool.entries(any_process=any_process)
    for index, entry in enumerate(entries):
        if time.monotonic() >= deadline:
            return Delivery(tuple(sent), None, len(entries) - index)
        try:
            body = entry.read()
        except OSError:
            # Another process took this entry first, or a newer one superseded it.
            continue
        try:
            receipt = uploader.put(entry.key, body, entry.metadata, deadline=deadline)
        except UploadFailed as failure:
            return Delivery(tuple(sent), failure, len(entries) - index - 1)
        spool.remove(entry)
        sent.append(receipt)
    return Delivery(tuple(sent), None, 0)


def log_failure(failure: UploadFailed, bucket: str | None, **fields: Any) -> None:
    """Say why an upload failed: an error for a configuration problem, else a warning."""
    log(
        logging.ERROR if failure.kind == "config" else logging.WARNING,
        "Coverage upload failed; the data stays in the spool",
        s3_bucket=bucket,
        **fields,
        error_code=failure.code,
        error_kind=failure.kind,
        attempts=failure.attempts,
        error=str(failure),
    )
