"""The one-call API kept from the single-package product: ``combine_coverage_files``."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from coverage_combiner.combine import CombineOptions, combine
from coverage_combiner.errors import CombinerError
from coverage_combiner.outputs import parse_formats, write_outputs
from coverage_combiner.remap import PathRemapper
from coverage_wrapper.keys import normalize_prefix


def combine_coverage_files(
    bucket_name: str,
    prefix: str,
    output_key: str,
    *,
    function: str | None = None,
    version: str = "latest",
    since: date | None = None,
    until: date | None = None,
    formats: str = "data,json,markdown",
    source_root: str | None = None,
    source_zip: str | None = None,
    paths: list[str] | None = None,
    jobs: int = 8,
) -> dict[str, Any]:
    """Merge every data file under ``s3://bucket_name/prefix`` and write the outputs.

    ``output_key`` is the key prefix the outputs go under (``.coverage``,
    ``coverage-summary.json``, ...). If it ends in ``.json``, the outputs go
    beside it and the JSON summary is written at exactly that key. Keys under
    the output prefix are never read as inputs. Returns the JSON summary plus
    ``outputs`` (where each file went). Reports that need the source (HTML,
    XML, LCOV, percentages) are made when ``source_root`` or ``source_zip``
    points at it.
    """
    output_prefix = (
        output_key.rsplit("/", 1)[0] + "/" if output_key.endswith(".json") else output_key
    )
    if output_prefix and not output_prefix.endswith("/"):
        output_prefix += "/"
    if ".." in output_key.split("/"):
        raise CombinerError(f"output_key {output_key!r} contains '..'")
    remap = PathRemapper.build(
        paths=paths or [], source_roots=[source_root] if source_root else [], source_zip=source_zip
    )
    result = combine(
        [f"s3://{bucket_name}/{prefix}"],
        CombineOptions(
            function=function,
            version=version,
            since=since,
            until=until,
            jobs=jobs,
            exclude_prefix=normalize_prefix(output_prefix) or None,
        ),
    )
    written = write_outputs(
        result, f"s3://{bucket_name}/{output_prefix}", formats=parse_formats(formats), remap=remap
    )
    summary = dict(written.summary)
    summary["outputs"] = dict(written.outputs)
    if output_key.endswith(".json"):
        from coverage_combiner.sources import s3_client

        s3_client().put_object(
            Bucket=bucket_name, Key=output_key, Body=json.dumps(summary, indent=2).encode()
        )
        summary["outputs"]["summary"] = f"s3://{bucket_name}/{output_key}"
    if written.missing_source is not None:
        summary["problems"] = [str(written.missing_source)]
    return summary
