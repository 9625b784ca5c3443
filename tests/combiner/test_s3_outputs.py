"""Outputs to S3: one whole PUT each, in an order where nothing points at what is not there yet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage_combiner import CombineOptions, PathRemapper, combine, write_outputs
from coverage_combiner.outputs import FILE_NAMES
from tests.combiner.conftest import key, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

APP = "def handler(event, context):\n    if event:\n        return 1\n    return 2\n"


def test_pages_before_their_index_and_reports_before_the_summary(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    write_data(
        tmp_path / "in" / key(pid=1),
        arcs={"orders@$LATEST": {"app.py": {(-1, 1), (1, -1), (-1, 2), (2, 3), (3, -1)}}},
    )
    put: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        put.append(params["Key"])

    # The client handed in is the one that writes: record what it puts, in order.
    s3.meta.events.register("before-parameter-build.s3.PutObject", record)
    result = combine([str(tmp_path / "in")], CombineOptions())
    written = write_outputs(
        result,
        f"s3://{bucket}/reports/run",
        formats=("data", "json", "xml", "lcov", "html", "markdown"),
        remap=PathRemapper.build(source_roots=[str(tmp_path / "src")]),
        s3=s3,
    )

    pages = [k for k in put if k.startswith("reports/run/html/")]
    assert len(pages) > 3
    assert pages[-1] == "reports/run/html/index.html"
    others = [k.removeprefix("reports/run/") for k in put if k not in pages]
    assert others == [
        "coverage.xml",
        "coverage.lcov",
        ".coverage",
        "coverage-summary.md",
        "coverage-summary.json",
    ]
    assert put.index(pages[-1]) < put.index("reports/run/coverage.xml")
    assert sorted(put) == sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/run/")["Contents"]
    )
    assert list(written.outputs) == list(FILE_NAMES)
