"""Fetch the data files the wrapper put in S3, merge them, and write the reports.

Each function's data is relative to its own task root (``calculator/app.py``),
so merging needs to know which function a file came from (the object's
``function`` metadata, else the key's function segment) and where that
function's code is on this machine. Merging uses coverage.py's public data
API (``CoverageData.update`` with a path mapping); downloaded bytes are only
ever opened as files, never passed to ``CoverageData.loads``.

The combiner package will take this job over; until it publishes its API,
this module is the test stack's own small combine.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import coverage
from coverage import CoverageData

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Larger objects are not coverage data of a test function.
MAX_OBJECT_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    """One data file as listed in S3."""

    key: str
    size: int
    function: str


@dataclass
class CoverageReport:
    """What :func:`report_from_s3` produced."""

    data_file: Path
    html_dir: Path
    table: str
    total_percent: float
    stored: list[StoredFile] = field(default_factory=list)
    measured_files: list[str] = field(default_factory=list)
    #: Objects left out, with the reason.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def function_of(key: str, metadata: Mapping[str, str]) -> str:
    """The function a data file belongs to: its metadata, else its key."""
    named = metadata.get("function")
    if named:
        return named
    parts = key.split("/")
    # {prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{file}
    return parts[-3] if len(parts) >= 3 else ""


def list_data_files(s3: S3Client, bucket: str, prefix: str) -> list[StoredFile]:
    """Every ``.coverage`` object under ``prefix`` (function read from each object's metadata)."""
    stored = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(".coverage"):
                continue
            metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
            stored.append(StoredFile(key, int(item.get("Size", 0)), function_of(key, metadata)))
    return sorted(stored, key=lambda s: s.key)


def merge(
    files: list[tuple[Path, str]], code_dirs: Mapping[str, Path], data_file: Path
) -> tuple[CoverageData, list[tuple[str, str]]]:
    """Merge local data files, each ``(path, function)``, into ``data_file``.

    Relative paths are joined to the function's code folder. Returns the
    merged data and the files left out with the reason.
    """
    data_file.unlink(missing_ok=True)
    combined = CoverageData(basename=str(data_file))
    skipped: list[tuple[str, str]] = []
    for path, function in files:
        root = code_dirs.get(function)
        if root is None:
            skipped.append((str(path), f"no source folder known for function {function!r}"))
            continue
        part = CoverageData(basename=str(path))
        try:
            part.read()
            mixed = combined.has_arcs() != part.has_arcs()
            if mixed and combined.measured_files() and part.measured_files():
                skipped.append((str(path), "mixes line and branch data with the others"))
                continue
            combined.update(part, map_path=functools.partial(_join_relative, root))
        except coverage.CoverageException as exc:
            skipped.append((str(path), f"not coverage data: {exc}"))
    combined.write()
    return combined, skipped


def _join_relative(root: Path, path: str) -> str:
    return path if os.path.isabs(path) else str(root / path)


def write_reports(data_file: Path, html_dir: Path, *, title: str) -> tuple[str, float]:
    """Write the HTML report (with contexts); return the text table and the total."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=False)
    cov.load()
    table = io.StringIO()
    total = cov.report(file=table, show_missing=False, skip_empty=True)
    if html_dir.exists():
        shutil.rmtree(html_dir)
    cov.html_report(directory=str(html_dir), show_contexts=True, title=title, skip_empty=True)
    return table.getvalue(), total


def download_and_merge(
    s3: S3Client, bucket: str, prefix: str, code_dirs: Mapping[str, Path], out_dir: Path
) -> tuple[CoverageData, list[StoredFile], list[tuple[str, str]]]:
    """Download every data file under ``s3://bucket/prefix`` and merge them into ``out_dir``.

    Returns the merged data (``out_dir/.coverage``), what was listed, and what
    was left out with the reason.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    downloads = out_dir / "downloads"
    if downloads.exists():
        shutil.rmtree(downloads)
    downloads.mkdir()
    stored = list_data_files(s3, bucket, prefix)
    local: list[tuple[Path, str]] = []
    skipped: list[tuple[str, str]] = []
    keys: dict[str, str] = {}
    for number, item in enumerate(stored):
        if item.size > MAX_OBJECT_BYTES:
            skipped.append((item.key, f"{item.size} bytes is more than {MAX_OBJECT_BYTES}"))
            continue
        path = downloads / f"{number:05d}.coverage"
        s3.download_file(bucket, item.key, str(path))
        local.append((path, item.function))
        keys[str(path)] = item.key
    combined, left_out = merge(local, code_dirs, out_dir / ".coverage")
    # Name the S3 object rather than the temporary download.
    skipped += [(keys.get(path, path), why) for path, why in left_out]
    return combined, stored, skipped


def report_from_s3(
    s3: S3Client,
    bucket: str,
    prefix: str,
    code_dirs: Mapping[str, Path],
    out_dir: Path,
    *,
    title: str = "Lambda Coverage: test stack",
) -> CoverageReport:
    """Download, merge and report everything under ``s3://bucket/prefix``."""
    combined, stored, skipped = download_and_merge(s3, bucket, prefix, code_dirs, out_dir)
    data_file = out_dir / ".coverage"
    html_dir = out_dir / "html"
    if combined.measured_files():
        table, total = write_reports(data_file, html_dir, title=title)
    else:
        table, total = "No coverage data was found.\n", 0.0
    return CoverageReport(
        data_file=data_file,
        html_dir=html_dir,
        table=table,
        total_percent=total,
        stored=stored,
        measured_files=sorted(combined.measured_files()),
        skipped=skipped,
    )
