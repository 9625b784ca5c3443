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
ignored, so the function's own writes can never trigger it again. Both paths
take each data file's function and version from its key
(:mod:`coverage_combiner.claims`): data labelled for another function is not
counted, and the object is named (a warning in the summary, ``foreign`` in
the rolling merge's answer and the log).

Environment: ``COVERAGE_S3_BUCKET``, ``COVERAGE_S3_PREFIX`` (raw data,
default ``coverage/``), ``COVERAGE_COMBINED_PREFIX`` (default
``coverage-combined/``, outside the raw prefix so that lifecycle rules for raw
data never expire reports), ``COVERAGE_S3_KEY_TEMPLATE`` (the layout the
functions write their keys in; default the wrapper's). Prefixes are folders.
They are checked at cold start (:func:`settings_from`): a missing bucket, an
empty prefix, or prefixes that are equal or nested would make every event
ignored, so the function's init fails instead, naming the variables and the fix.
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from coverage_combiner.claims import ClaimCheck, read_key
from coverage_combiner.combine import CombineOptions, combine
from coverage_combiner.errors import CombinerError, NoDataError
from coverage_combiner.inputs import s3_client
from coverage_combiner.merge import Merger
from coverage_combiner.object_names import is_data_key, key_of
from coverage_combiner.outputs import write_data_file, write_outputs
from coverage_combiner.parallel import available_cpus
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
from coverage_wrapper.limits import combiner_processes

ROLLING_NAME = "rolling/combined.coverage"
MAX_ATTEMPTS = 8
#: What Lambda's ``_HANDLER`` holds when this module is the function's handler.
HANDLER = f"{__name__}.handler"

_log = logging.getLogger(__name__)
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


class Settings(NamedTuple):
    """The function's settings, checked (:func:`settings_from`)."""

    bucket: str
    #: Where the functions write data files (a folder, never empty).
    raw_prefix: str
    #: Where reports go: a folder beside the raw one, neither equal nor nested.
    combined_prefix: str
    key_template: str


def settings_from(environ: Mapping[str, str]) -> Settings:
    """Read and check the settings; one :class:`CombinerError` naming every problem and its fix.

    Without a bucket nothing can be read; with an empty raw prefix, or raw
    and combined prefixes that are equal or nested, every event would be
    ignored (or reports read back as data), silently. Raised at cold start,
    it fails the function's init, and the log shows it.
    """
    problems: list[str] = []
    bucket = environ.get(ENV_S3_BUCKET, "").strip()
    if not bucket:
        problems.append(f"{ENV_S3_BUCKET} is not set: set it to the coverage bucket's name")
    elif not _BUCKET_NAME.fullmatch(bucket):
        problems.append(
            f"{ENV_S3_BUCKET}={bucket!r} is not a bucket name: give the name alone "
            "(my-coverage-bucket), not s3://... or an ARN"
        )
    raw = _prefix(environ, ENV_S3_PREFIX, DEFAULT_S3_PREFIX, problems)
    combined = _prefix(environ, ENV_COMBINED_PREFIX, DEFAULT_COMBINED_PREFIX, problems)
    if raw is not None and combined is not None:
        problems.extend(_overlap(raw, combined))
    template = environ.get(ENV_S3_KEY_TEMPLATE) or DEFAULT_KEY_TEMPLATE
    try:
        KeyTemplate.parse_template(template)
    except ValueError as exc:
        problems.append(
            f"{ENV_S3_KEY_TEMPLATE}: {exc}; set it to the template the instrumented "
            "functions write with"
        )
    if problems or raw is None or combined is None:
        raise CombinerError(
            "the coverage combiner function is misconfigured, and would ignore every event: "
            + "; ".join(problems)
        )
    return Settings(bucket, raw, combined, template)


def _prefix(environ: Mapping[str, str], name: str, default: str, problems: list[str]) -> str | None:
    """The folder ``name`` gives (``default`` when unset); None, with the problem noted, if bad."""
    written = environ.get(name, default)
    try:
        folder = normalize_prefix(written)
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
        return None
    if not folder:
        problems.append(
            f"{name}={written!r} is empty, which is the whole bucket: set it to a folder "
            f"(default {default!r}), or unset it"
        )
        return None
    return folder


def _overlap(raw: str, combined: str) -> list[str]:
    """Why the raw and combined folders cannot work together (equal, or one inside the other)."""
    fix = (
        f"give them two separate folders, such as {ENV_S3_PREFIX}={DEFAULT_S3_PREFIX!r} and "
        f"{ENV_COMBINED_PREFIX}={DEFAULT_COMBINED_PREFIX!r}"
    )
    if raw == combined:
        return [f"{ENV_S3_PREFIX} and {ENV_COMBINED_PREFIX} are both {raw!r}: {fix}"]
    if raw.startswith(combined) or combined.startswith(raw):
        inner, outer = (raw, combined) if raw.startswith(combined) else (combined, raw)
        return [
            f"{ENV_S3_PREFIX}={raw!r} and {ENV_COMBINED_PREFIX}={combined!r} are nested "
            f"({inner!r} is inside {outer!r}): {fix}"
        ]
    return []


#: Checked at cold start when this module is the function's handler, so that a
#: misconfigured function fails its init instead of ignoring every event.
SETTINGS: Settings | None = (
    settings_from(os.environ) if os.environ.get("_HANDLER") == HANDLER else None
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Combine on a schedule, or merge the objects an S3 event names.

    The settings are checked before any event is looked at (at import when
    this is the function's handler, else here).
    """
    settings = SETTINGS or settings_from(os.environ)
    bucket, raw, combined = settings.bucket, settings.raw_prefix, settings.combined_prefix
    keys = created_keys(event, bucket)
    if keys is not None:
        return merge_into_rolling(
            bucket,
            keys,
            raw_prefix=raw,
            combined_prefix=combined,
            key_template=settings.key_template,
        )
    return combine_all(
        bucket,
        raw_prefix=raw,
        combined_prefix=combined,
        key_template=settings.key_template,
        processes=merge_processes(os.environ),
    )


#: Lambda sets it to the function's memory, in MB.
_MEMORY_SIZE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"


def merge_processes(environ: Mapping[str, str], cpus: int | None = None) -> int | None:
    """The processes the scheduled combine merges with: as many as the function's memory holds.

    Every process of the sandbox counts against the function's memory, and
    each may have to hold an input of the size cap
    (:func:`coverage_wrapper.limits.combiner_processes`); never more than
    the ``cpus`` (default: those this process may run on). None outside
    Lambda (the memory is not known): the combine's own default.
    """
    try:
        memory_mb = int(environ.get(_MEMORY_SIZE, ""))
    except ValueError:
        return None
    return combiner_processes(memory_mb, cpus or available_cpus(), DEFAULT_MAX_BYTES)


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
    processes: int | None = None,
) -> dict[str, Any]:
    """Combine every data file under the raw prefix into ``{combined}latest/``.

    ``key_template`` is the layout of the raw keys: with it, only the newest
    snapshot of each process is read. ``processes`` merge (default: one per
    CPU; the handler passes :func:`merge_processes`). With no data at all (a new bucket, or
    raw data expired), the last report is left as it is and the answer says so.
    """
    try:
        result = combine(
            [f"s3://{bucket}/{raw_prefix}"],
            CombineOptions(
                exclude_prefix=combined_prefix, key_template=key_template, processes=processes
            ),
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
    key_template: str = DEFAULT_KEY_TEMPLATE,
) -> dict[str, Any]:
    """Merge the data files ``keys`` into the rolling data file, with conditional writes.

    ``before_write`` runs between reading the rolling file and writing it back
    (tests use it to stage a concurrent update). ``key_template`` reads each
    key's function and version: data a file labels for another is not
    counted, and the answer's ``foreign`` names the file.
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
    template = KeyTemplate.parse_template(key_template)
    claims = {name: _claims_of(template, name) for name in new_data}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            # Writers that lost the same race must not all come back at once.
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        body, condition, rejected, foreign = _merge_with_current(
            client, bucket, rolling_key, new_data, claims
        )
        if body is None:
            # Nothing new merged: the rolling file stays as it is, or stays absent
            # (an empty one would be a file that holds no data yet claims a kind).
            return {
                "merged": [],
                "ignored": ignored,
                "rejected": unfetched + rejected,
                "foreign": foreign,
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
        for entry in foreign:
            _log.warning("%s: %s", entry["input"], entry["reason"])
        return {
            "merged": [
                name for name in (f"s3://{bucket}/{k}" for k in wanted) if name not in refused
            ],
            "ignored": ignored,
            "rejected": rejected,
            "foreign": foreign,
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
    client: Any,
    bucket: str,
    rolling_key: str,
    new_data: dict[str, bytes],
    claims: Mapping[str, ClaimCheck | None],
) -> tuple[bytes | None, dict[str, str], list[dict[str, str]], list[dict[str, str]]]:
    """Read the rolling file, merge the new data into it (each input as ``claims`` says).

    Returns the new bytes (None when no new input could be merged: nothing
    to write), the write condition that makes the write lose against any
    update since this read, the inputs refused with why, and the inputs
    merged without data labelled for another function, with why. The kind of the
    result (line or branch data) is decided by the data alone, never by the
    rolling file's kind: see :mod:`coverage_combiner.merge`.
    """
    rolling_name = f"s3://{bucket}/{rolling_key}"
    merger = Merger()
    rejected: list[dict[str, str]] = []
    foreign: list[dict[str, str]] = []
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
            check = claims.get(name)
            try:
                left_out = merger.add_bytes(name, data, claims=check)
            except Rejected as exc:
                rejected.append({"input": name, "reason": str(exc)})
                continue
            if left_out and check is not None:
                foreign.append({"input": name, "reason": check.describe(left_out)})
        merged = merger.result()
    finally:
        merger.close()
    if len(rejected) == len(new_data):
        return None, condition, rejected, foreign
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "combined.coverage"
        write_data_file(merged, path, None)
        return path.read_bytes(), condition, rejected, foreign


def _claims_of(template: KeyTemplate, name: str) -> ClaimCheck | None:
    """What of the object ``name`` counts: its key's (or its folder's) function's data."""
    key, owner = read_key(template, key_of(name))
    return ClaimCheck.of(key, None, owner)
