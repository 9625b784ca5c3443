"""The combiner as a Lambda function: on a schedule, and on S3 object-created events.

- A scheduled event (EventBridge) combines everything under the raw prefix
  into ``{combined prefix}latest/`` (data file, JSON and Markdown summaries).
- S3 ``ObjectCreated`` events merge the new data files into a rolling data
  file, ``{combined prefix}rolling/combined.coverage``, incrementally. Two
  events handled at the same time cannot lose each other's update: the
  write is conditional on the ETag that was read (``If-Match``, or
  ``If-None-Match: *`` when creating), and a write that lost the race reads
  again and retries.

Keys under the combined prefix and keys that are not data files are
ignored, so the function's own writes can never trigger it again.

Environment: ``COVERAGE_S3_BUCKET``, ``COVERAGE_S3_PREFIX`` (raw data,
default ``coverage/``), ``COVERAGE_COMBINED_PREFIX`` (default
``coverage-combined/``, outside the raw prefix so that lifecycle rules for raw
data never expire reports), ``COVERAGE_S3_KEY_TEMPLATE`` (the layout the
functions write their keys in; default the wrapper's). Prefixes are folders.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from coverage_combiner.combine import CombineOptions, combine
from coverage_combiner.errors import CombinerError, NoDataError
from coverage_combiner.inputs import s3_client
from coverage_combiner.merge import Merger
from coverage_combiner.object_names import is_data_key
from coverage_combiner.outputs import write_data_file, write_outputs
from coverage_combiner.reader import DEFAULT_MAX_BYTES, Rejected
from coverage_wrapper.constants import (
    ENV_COMBINED_PREFIX,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
)
from coverage_wrapper.keys import (
    DEFAULT_COMBINED_PREFIX,
    DEFAULT_KEY_TEMPLATE,
    DEFAULT_S3_PREFIX,
    KeyTemplate,
    normalize_prefix,
)

ROLLING_NAME = "rolling/combined.coverage"
MAX_ATTEMPTS = 8


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Combine on a schedule, or merge the objects an S3 event names."""
    bucket = os.environ[ENV_S3_BUCKET]
    raw = normalize_prefix(os.environ.get(ENV_S3_PREFIX, DEFAULT_S3_PREFIX))
    combined = normalize_prefix(os.environ.get(ENV_COMBINED_PREFIX, DEFAULT_COMBINED_PREFIX))
    keys = created_keys(event, bucket)
    if keys is not None:
        return merge_into_rolling(bucket, keys, raw_prefix=raw, combined_prefix=combined)
    template = os.environ.get(ENV_S3_KEY_TEMPLATE) or DEFAULT_KEY_TEMPLATE
    try:
        KeyTemplate.parse_template(template)
    except ValueError as exc:
        raise CombinerError(
            f"{ENV_S3_KEY_TEMPLATE} of this function: {exc}; set it to the template the "
            "instrumented functions write with"
        ) from exc
    return combine_all(bucket, raw_prefix=raw, combined_prefix=combined, key_template=template)


def created_keys(event: dict[str, Any], bucket: str) -> list[str] | None:
    """The object keys an S3 event names, or None for any other event (a schedule).

    Both shapes are read: S3 notifications (``Records``, keys URL-encoded) and
    EventBridge's ``Object Created`` events (``detail``). Objects of another
    bucket are left out: the function's role reads one bucket.
    """
    records = event.get("Records")
    if isinstance(records, list):
        return [
            unquote_plus(record["s3"]["object"]["key"])
            for record in records
            if "s3" in record
            and record["s3"].get("bucket", {}).get("name", bucket) == bucket
            and str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated")
        ]
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        detail = event.get("detail", {})
        if detail.get("bucket", {}).get("name", bucket) != bucket:
            return []
        return [str(detail["object"]["key"])]
    return None


def combine_all(
    bucket: str,
    *,
    raw_prefix: str,
    combined_prefix: str,
    key_template: str = DEFAULT_KEY_TEMPLATE,
) -> dict[str, Any]:
    """Combine every data file under the raw prefix into ``{combined}latest/``.

    ``key_template`` is the layout of the raw keys: with it, only the newest
    snapshot of each process is read. With no data at all (a new bucket, or
    raw data expired), the last report is left as it is and the answer says so.
    """
    try:
        result = combine(
            [f"s3://{bucket}/{raw_prefix}"],
            CombineOptions(exclude_prefix=combined_prefix, key_template=key_template),
        )
    except NoDataError as exc:
        return {"outputs": {}, "no_data": str(exc)}
    written = write_outputs(
        result, f"s3://{bucket}/{combined_prefix}latest/", formats=("data", "json", "markdown")
    )
    return {**written.summary, "outputs": written.outputs}


def merge_into_rolling(
    bucket: str,
    keys: list[str],
    *,
    raw_prefix: str,
    combined_prefix: str,
    before_write: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Merge the data files ``keys`` into the rolling data file, with conditional writes.

    ``before_write`` runs between reading the rolling file and writing it back
    (tests use it to stage a concurrent update).
    """
    wanted = [
        k
        for k in keys
        if k.startswith(raw_prefix) and not k.startswith(combined_prefix) and is_data_key(k)
    ]
    ignored = sorted(set(keys) - set(wanted))
    if not wanted:
        return {"merged": [], "ignored": ignored, "rejected": [], "attempts": 0}
    client = s3_client()
    rolling_key = combined_prefix + ROLLING_NAME
    rolling_name = f"s3://{bucket}/{rolling_key}"
    new_data: dict[str, bytes] = {}
    unfetched: list[dict[str, str]] = []
    for key in wanted:
        try:
            new_data[f"s3://{bucket}/{key}"] = _fetch_new(client, bucket, key)
        except Rejected as exc:
            unfetched.append({"input": f"s3://{bucket}/{key}", "reason": str(exc)})
    if not new_data:
        return {"merged": [], "ignored": ignored, "rejected": unfetched, "attempts": 0}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            # Writers that lost the same race must not all come back at once.
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        body, condition, rejected = _merge_with_current(client, bucket, rolling_key, new_data)
        if body is None:
            # Nothing new merged: the rolling file stays as it is, or stays absent
            # (an empty one would be a file that holds no data yet claims a kind).
            return {
                "merged": [],
                "ignored": ignored,
                "rejected": unfetched + rejected,
                "attempts": 0,
            }
        if before_write is not None:
            before_write()
        try:
            client.put_object(Bucket=bucket, Key=rolling_key, Body=body, **condition)  # type: ignore[arg-type]
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                continue
            raise
        rejected = unfetched + rejected
        refused = {r["input"] for r in rejected}
        return {
            "merged": [
                name for name in (f"s3://{bucket}/{k}" for k in wanted) if name not in refused
            ],
            "ignored": ignored,
            "rejected": rejected,
            "rolling": rolling_name,
            "attempts": attempt,
        }
    raise RuntimeError(
        f"s3://{bucket}/{rolling_key} changed under every one of {MAX_ATTEMPTS} attempts; "
        "the event will be retried by Lambda"
    )


def _fetch_new(client: Any, bucket: str, key: str) -> bytes:
    """The bytes of a new data file, or :class:`Rejected` when it is gone or too large.

    An object can be deleted (or expire) between its event and this read; the
    rest of the event's objects still merge.
    """
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        raise Rejected("no longer in the bucket (deleted or expired after its event)") from None
    size = int(response.get("ContentLength", 0))
    if size > DEFAULT_MAX_BYTES:
        response["Body"].close()
        raise Rejected(f"{size} bytes is over the size cap of {DEFAULT_MAX_BYTES}")
    body: bytes = response["Body"].read()
    return body


def _merge_with_current(
    client: Any, bucket: str, rolling_key: str, new_data: dict[str, bytes]
) -> tuple[bytes | None, dict[str, str], list[dict[str, str]]]:
    """Read the rolling file, merge the new data into it.

    Returns the new bytes (None when no new input could be merged: nothing
    to write), the write condition that makes the write lose against any
    update since this read, and the inputs refused with why. The kind of the
    result (line or branch data) is decided by the data alone, never by the
    rolling file's kind: see :mod:`coverage_combiner.merge`.
    """
    rolling_name = f"s3://{bucket}/{rolling_key}"
    merger = Merger()
    rejected: list[dict[str, str]] = []
    try:
        try:
            current = client.get_object(Bucket=bucket, Key=rolling_key)
        except client.exceptions.NoSuchKey:
            condition = {"IfNoneMatch": "*"}
        else:
            condition = {"IfMatch": current["ETag"]}
            try:
                merger.add_bytes(rolling_name, current["Body"].read(), combined_ok=True)
            except Rejected as exc:
                # Writing over it would drop everything merged so far: stop and say so.
                raise RuntimeError(
                    f"the rolling data file {rolling_name} is unreadable ({exc}); "
                    "nothing was changed. Move it aside: the next event starts a new one, and "
                    "the scheduled combine still reads every raw data file"
                ) from exc
        for name, data in new_data.items():
            try:
                merger.add_bytes(name, data)
            except Rejected as exc:
                rejected.append({"input": name, "reason": str(exc)})
        merged = merger.result()
    finally:
        merger.close()
    if len(rejected) == len(new_data):
        return None, condition, rejected
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "combined.coverage"
        write_data_file(merged, path, None)
        return path.read_bytes(), condition, rejected
