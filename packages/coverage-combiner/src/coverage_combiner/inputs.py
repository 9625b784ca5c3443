"""Where data files come from: S3 prefixes, local folders, single files.

A source lists *inputs*: a name (the S3 key or the path), a size and a way
to fetch the bytes. Listing is cheap and complete (paginated); fetching
happens later, in parallel, bounded by ``--jobs``. An input is a few small
objects (no ``Path``, no closure), so tens of thousands of them stay small
next to the merge itself.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage_combiner.errors import SourceError
from coverage_combiner.object_names import (
    NOT_COVERAGE_DATA,
    NOT_DATA,
    is_data_key,
    is_health_probe,
    is_plainly_not_data,
)
from coverage_wrapper.keys import normalize_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from coverage_combiner.claims import ClaimCheck


@dataclass(frozen=True, slots=True)
class Input:
    """One candidate data file.

    Its bytes come from ``fetch`` when given, else from ``origin``, the
    reader shared by every input of one listing (one per input would cost
    more than the input itself). ``claims`` says which of its contexts count
    (:mod:`coverage_combiner.claims`; set when inputs are chosen, shared by
    the inputs of one function and version).
    """

    name: str
    size: int
    modified: datetime | None
    fetch: Callable[[], bytes] | None = None
    origin: Origin | None = None
    claims: ClaimCheck | None = None

    def read(self) -> bytes:
        """The input's bytes (one attempt; see :func:`fetch_bytes` for retries)."""
        if self.fetch is not None:
            return self.fetch()
        if self.origin is None:
            raise SourceError(f"{self.name}: no way to read it")
        return self.origin.read(self.name)


class Origin:
    """Reads inputs by name: local files (this class) or S3 objects (:class:`S3Origin`)."""

    def read(self, name: str) -> bytes:
        """The bytes of the file ``name``."""
        # Unbuffered: the file is read whole at once, and a buffer would only
        # add a copy and system calls.
        with open(name, "rb", buffering=0) as file:
            return file.readall()


class S3Origin(Origin):
    """Reads ``s3://bucket/key`` inputs of one bucket with one client."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._prefix = f"s3://{bucket}/"

    def read(self, name: str) -> bytes:
        """The bytes of the object ``name`` (``s3://bucket/key``)."""
        key = name.removeprefix(self._prefix)
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


LOCAL_FILES = Origin()


@dataclass(frozen=True)
class Listing:
    """What a source holds: data files, the other objects with why they were left out,
    and how many of the wrapper's own health probes were passed over.

    ``skipped`` may be misnamed data (the result is partial); ``not_data`` is plainly
    none: sources, reports, configuration
    (:func:`~coverage_combiner.object_names.is_plainly_not_data`).
    """

    inputs: list[Input]
    skipped: list[tuple[str, str]]
    probes: int = 0
    not_data: list[tuple[str, str]] = field(default_factory=list)


#: Attempts per input at reading a body that broke mid-read. Everything else
#: about a request (throttling, 5xx, connection errors) is botocore's to retry
#: (its ``retries`` configuration, :func:`s3_client`); what cannot succeed on
#: retry (AccessDenied, NoSuchKey, a missing local file) fails at once.
FETCH_ATTEMPTS = 3


def _retryable() -> tuple[type[Exception], ...]:
    """Errors of a read that a second read can cure: the body broke off mid-way."""
    from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError

    return (ConnectionError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError)


def fetch_bytes(item: Input, *, attempts: int = FETCH_ATTEMPTS, backoff: float = 0.1) -> bytes:
    """Fetch ``item``'s bytes; raise :class:`SourceError` naming why not.

    A body that broke mid-read is read again, up to ``attempts`` reads in all,
    after a random pause of up to ``backoff * 2**n`` seconds (full jitter, so
    that parallel fetches do not retry in step). Any other error is final.
    """
    retryable = _retryable()
    for attempt in range(1, attempts + 1):
        try:
            return item.read()
        except retryable as exc:
            if attempt == attempts:
                raise SourceError(f"could not be fetched after {attempts} attempts: {exc}") from exc
            time.sleep(random.uniform(0, backoff * 2 ** (attempt - 1)))
        except Exception as exc:  # botocore's ClientError, OSError: final
            raise SourceError(f"could not be fetched: {exc}") from exc
    raise AssertionError("unreachable")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into bucket and prefix, as written."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{url!r} names no bucket: write it as s3://bucket/prefix")
    return bucket, prefix


def source_key_prefix(url: str) -> tuple[str, str]:
    """The bucket and the key prefix an ``s3://`` source lists.

    The prefix is a folder: ``s3://b/coverage`` lists ``coverage/``, never
    its sibling ``coverage-combined/``. A trailing ``*`` asks for every key
    that starts with the text before it: ``s3://b/cov*`` lists ``cov``.
    """
    bucket, written = parse_s3_url(url)
    stem = written.removesuffix("*")
    if "*" in stem:
        raise SourceError(
            f"{url!r}: only a trailing '*' is understood (every key that starts with the text "
            "before it); S3 lists by prefix, so write s3://bucket/folder/ or s3://bucket/start*"
        )
    folder, _, start = stem.rpartition("/") if written.endswith("*") else (stem, "", "")
    try:
        return bucket, normalize_prefix(folder) + start
    except ValueError as exc:
        raise SourceError(f"{url!r}: {exc}") from None


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def s3_client() -> S3Client:
    """A shared S3 client (boto3 is thread-safe per client).

    botocore retries its requests (mode ``standard``, 5 attempts): throttling,
    5xx and connection errors, never AccessDenied or NoSuchKey.
    """
    with _clients_lock:
        if "s3" not in _clients:
            import boto3
            from botocore.config import Config

            _clients["s3"] = boto3.client(
                "s3",
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=64
                ),
            )
        client: S3Client = _clients["s3"]
        return client


def source_in_output(
    spec: str, *, exclude_prefix: str | None = None, exclude_folder: str | None = None
) -> str | None:
    """Why ``spec`` lists nothing at all: it is the outputs' folder, or inside it; else None.

    A combine never reads its own outputs back (``exclude_prefix``,
    ``exclude_folder``), so a source under them would quietly hold no data.
    """
    if spec.startswith("s3://"):
        if not exclude_prefix or not source_key_prefix(spec)[1].startswith(exclude_prefix):
            return None
        where = f"the output prefix {exclude_prefix!r}"
    else:
        if not exclude_folder:
            return None
        source, output = os.path.realpath(spec), os.path.realpath(exclude_folder)
        if source != output and not source.startswith(output.rstrip("/") + "/"):
            return None
        where = f"the output folder {exclude_folder!r}"
    return (
        f"the source {spec!r} is {where} or inside it: a combine never reads its own outputs "
        "back, so nothing there would be read; write the reports to another folder (a sibling, "
        "such as reports/) or combine from the folder that holds the data"
    )


def list_source(
    spec: str,
    *,
    exclude_prefix: str | None = None,
    exclude_folder: str | None = None,
    client: S3Client | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Listing:
    """List one source: ``s3://bucket/prefix``, a folder, or a file.

    An S3 prefix is a folder unless it ends in ``*`` (:func:`source_key_prefix`).
    Keys under ``exclude_prefix`` and files under ``exclude_folder`` are
    outputs of a combiner, never inputs. ``client`` is the S3 client to use
    (default: one from boto3's own configuration, which honours
    ``AWS_ENDPOINT_URL_S3``). ``on_page`` is told how many objects have been
    listed so far, after each page of an S3 listing.
    """
    if spec.startswith("s3://"):
        return _list_s3(spec, exclude_prefix, client or s3_client(), on_page)
    listing = _list_local(Path(spec), Path(exclude_folder) if exclude_folder else None)
    if on_page is not None:
        on_page(len(listing.inputs) + len(listing.skipped) + len(listing.not_data) + listing.probes)
    return listing


def _list_s3(
    url: str,
    exclude_prefix: str | None,
    client: S3Client,
    on_page: Callable[[int], None] | None = None,
) -> Listing:
    bucket, prefix = source_key_prefix(url)
    origin = S3Origin(client, bucket)
    inputs: list[Input] = []
    skipped: list[tuple[str, str]] = []
    not_data: list[tuple[str, str]] = []
    probes = 0
    listed = 0
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            listed += len(page.get("Contents", []))
            if on_page is not None:
                on_page(listed)
            for item in page.get("Contents", []):
                key = item["Key"]
                if exclude_prefix and key.startswith(exclude_prefix):
                    continue
                if is_health_probe(key):
                    probes += 1
                    continue
                if not is_data_key(key):
                    _other(f"s3://{bucket}/{key}", key, skipped, not_data)
                    continue
                inputs.append(
                    Input(
                        name=f"s3://{bucket}/{key}",
                        size=int(item.get("Size", 0)),
                        modified=item.get("LastModified"),
                        origin=origin,
                    )
                )
    except Exception as exc:  # botocore's ClientError and connection errors
        raise SourceError(f"cannot list {url}: {exc}") from exc
    return Listing(inputs, skipped, probes, not_data)


def _other(
    name: str, key: str, skipped: list[tuple[str, str]], not_data: list[tuple[str, str]]
) -> None:
    """File ``name`` (not a data file) as plainly not data, or as skipped."""
    if is_plainly_not_data(key):
        not_data.append((name, NOT_COVERAGE_DATA))
    else:
        skipped.append((name, NOT_DATA))


def _list_local(path: Path, exclude: Path | None) -> Listing:
    if path.is_file():
        return Listing([_local_input(path)], [])
    if not path.is_dir():
        raise SourceError(
            f"{str(path)!r} is neither a file, a folder nor s3://bucket/prefix; check the path"
        )
    excluded = os.path.realpath(exclude) if exclude else None
    inputs: list[Input] = []
    skipped: list[tuple[str, str]] = []
    not_data: list[tuple[str, str]] = []
    probes = 0
    for name, linked in sorted(_walk(str(path), excluded)):
        if linked:
            skipped.append((name, LINKED))
        elif is_health_probe(name):
            probes += 1
        elif is_data_key(name):
            inputs.append(_local_input(name))
        else:
            # Judged by the path below the source: the source's own folders say nothing.
            _other(name, os.path.relpath(name, path), skipped, not_data)
    return Listing(inputs, skipped, probes, not_data)


#: Why a symbolic link under a folder source was left out.
LINKED = "a symbolic link: not followed (give what it points to as a source of its own)"


def _walk(folder: str, excluded: str | None) -> Iterator[tuple[str, bool]]:
    """Every regular file below ``folder`` as (path, False), and every symbolic link as
    (path, True): links are not followed, and ``excluded`` (a real path) is not entered."""
    pending = [folder]
    while pending:
        current = pending.pop()
        if excluded is not None and os.path.realpath(current) == excluded:
            continue
        # "." lists as "x", not "./x", as a path written by hand would be.
        prefix = "" if current == "." else current.rstrip("/") + "/"
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_symlink():
                    yield prefix + entry.name, True
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(prefix + entry.name)
                elif entry.is_file(follow_symlinks=False):
                    yield prefix + entry.name, False


def _local_input(path: Path | str) -> Input:
    name = str(path)
    stat = os.stat(name)
    return Input(
        name=name,
        size=stat.st_size,
        modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
        origin=LOCAL_FILES,
    )
