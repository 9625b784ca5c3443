"""Fetch the data files the wrapper put in S3, merge them, and write the reports.

Each function's data is relative to its own task root (``calculator/app.py``),
so the combiner maps each function's paths (known from the ``function@version``
contexts) onto that function's code folder on this machine.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import coverage
from coverage import CoverageData

from coverage_combiner import CombineOptions, PathRemapper, combine
from coverage_combiner.outputs import write_data_file
from coverage_wrapper.keys import DATA_SUFFIX, DEFAULT_KEY_TEMPLATE, KeyTemplate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
    #: Objects rejected (not merged), with the reason.
    rejected: list[tuple[str, str]] = field(default_factory=list)


def function_of(key: str, metadata: Mapping[str, str], template: str = DEFAULT_KEY_TEMPLATE) -> str:
    """The function a data file belongs to: its metadata, else its key (in ``template``)."""
    named = metadata.get("function")
    if named:
        return named
    parsed = KeyTemplate.parse_template(template).parse(key)
    return parsed.function if parsed else ""


def list_data_files(s3: S3Client, bucket: str, prefix: str) -> list[StoredFile]:
    """Every ``.coverage`` object under ``prefix`` (function read from each object's metadata)."""
    stored = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(DATA_SUFFIX):
                continue
            metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
            stored.append(StoredFile(key, int(item.get("Size", 0)), function_of(key, metadata)))
    return sorted(stored, key=lambda s: s.key)


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
    """Merge every data file under ``s3://bucket/prefix`` into ``out_dir/.coverage``.

    The combiner does the work: it validates each object, reads the newest
    snapshot of each process, and maps each function's relative paths onto
    that function's code folder. Returns the merged data, what was listed,
    and what was left out with the reason.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = list_data_files(s3, bucket, prefix)
    result = combine(
        [f"s3://{bucket}/{prefix}"], CombineOptions(version="all", allow_empty=True), s3=s3
    )
    remap = PathRemapper(function_roots={name: str(path) for name, path in code_dirs.items()})
    data_file = out_dir / ".coverage"
    write_data_file(result.merged, data_file, remap)
    combined = CoverageData(basename=str(data_file))
    combined.read()
    return combined, stored, list(result.rejected)


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
    combined, stored, rejected = download_and_merge(s3, bucket, prefix, code_dirs, out_dir)
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
        rejected=rejected,
    )
