"""The one-call API kept from the single-package product: ``combine_coverage_files``."""

from __future__ import annotations

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
    allow_empty: bool = False,
    rcfile: str | None = None,
    unexecuted: bool = True,
) -> dict[str, Any]:
    """Merge every data file under ``s3://bucket_name/prefix`` and write the outputs.

    If ``output_key`` ends in ``.json`` (``coverage/daily/2026-01-15.json``),
    the JSON summary is written at exactly that key and every other output
    beside it, named after it (``2026-01-15.coverage``, ``2026-01-15.md``, ...),
    so that runs writing to one folder never overwrite each other. Otherwise
    ``output_key`` is a folder and the outputs have their fixed names
    (``.coverage``, ``coverage-summary.json``, ...). Keys under the output
    folder are never read as inputs. Returns the JSON summary, with
    ``outputs`` (where each file went). Reports that need the source (HTML,
    XML, LCOV, percentages) are made when ``source_root`` or ``source_zip``
    points at it. No data under ``prefix`` raises :class:`NoDataError` and
    writes nothing, unless ``allow_empty``. The reports follow the coverage.py
    configuration ``rcfile``, else the function's own or the working folder's.
    With ``unexecuted``, files of ``source_root`` that never ran count at 0 %.
    """
    if ".." in output_key.split("/"):
        raise CombinerError(f"output_key {output_key!r} contains '..'")
    folder, name = _output_place(output_key)
    wanted = parse_formats(formats)
    if name is not None and "json" not in wanted:
        # The summary is what output_key names: it is always written.
        wanted = (*wanted, "json")
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
            exclude_prefix=normalize_prefix(folder) or None,
            allow_empty=allow_empty,
        ),
    )
    written = write_outputs(
        result,
        f"s3://{bucket_name}/{folder}",
        formats=wanted,
        remap=remap,
        name=name,
        rcfile=rcfile,
        unexecuted=unexecuted,
    )
    summary = dict(written.summary)
    summary["outputs"] = dict(written.outputs)
    if name is not None:
        summary["outputs"]["summary"] = summary["outputs"]["json"]
    if written.missing_source is not None:
        summary["problems"] = [str(written.missing_source)]
    return summary


def _output_place(output_key: str) -> tuple[str, str | None]:
    """The output folder (a key prefix ending in ``/``, or empty) and the outputs' name."""
    if output_key.endswith(".json"):
        folder, _, file_name = output_key.rpartition("/")
        return (folder + "/" if folder else ""), file_name.removesuffix(".json")
    return (output_key if not output_key or output_key.endswith("/") else output_key + "/"), None
