"""Fixtures for the combiner's tests: real data files, S3 on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from coverage import CoverageData

from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyFields, KeyTemplate
from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Arcs = dict[str, set[tuple[int, int]]]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> S3Client:
    """A client for moto's server; the combiner's own clients use it too (via the env)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for key, value in s3_environment(moto_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    from coverage_combiner import inputs

    monkeypatch.setattr(inputs, "_clients", {})
    return s3_client(moto_url)


_buckets = iter(range(1, 10_000))


@pytest.fixture
def bucket(s3: S3Client) -> str:
    name = f"combiner-test-{os.getpid()}-{next(_buckets)}"
    s3.create_bucket(Bucket=name)
    return name


def write_data(
    path: Path,
    *,
    arcs: dict[str, dict[str, set[tuple[int, int]]]] | None = None,
    lines: dict[str, dict[str, set[int]]] | None = None,
) -> Path:
    """A real coverage.py data file: ``{context: {file: arcs-or-lines}}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = CoverageData(basename=str(path))
    for context, files in (arcs or {}).items():
        data.set_context(context)
        data.add_arcs({name: sorted(values) for name, values in files.items()})
    for context, line_files in (lines or {}).items():
        data.set_context(context)
        data.add_lines({name: sorted(numbers) for name, numbers in line_files.items()})
    data.write()
    return path


def read_data(path: Path) -> tuple[dict[str, set[int]], Arcs, set[str]]:
    """Lines and arcs per file, and the contexts, through coverage.py's public API."""
    data = CoverageData(basename=str(path))
    data.read()
    files = data.measured_files()
    return (
        {f: set(data.lines(f) or ()) for f in files},
        {f: set(data.arcs(f) or ()) for f in files},
        set(data.measured_contexts()),
    )


def key(
    function: str = "orders",
    version: str = "LATEST",
    container: str = "c1",
    pid: int = 7,
    seq: int = 1,
    day: str = "2026/11/25",
    *,
    template: str = DEFAULT_KEY_TEMPLATE,
    prefix: str = "coverage/",
    run_id: str | None = None,
) -> str:
    """A key as the wrapper renders it (``day`` is ``yyyy/mm/dd``)."""
    when = datetime.strptime(day, "%Y/%m/%d").replace(tzinfo=timezone.utc)
    fields = KeyFields(prefix, when, function, version, "eu-west-1", container, pid, seq, run_id)
    return KeyTemplate.parse_template(template).render(fields)


def import_fresh(name: str) -> Any:
    sys.modules.pop(name, None)
    return __import__(name)
