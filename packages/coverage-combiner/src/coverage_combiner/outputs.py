"""Write what a combine produced: the data file and the reports, atomically.

Every file is written under a temporary name and renamed into place (the HTML
folder is built aside and swapped in), so a reader never sees half a report;
to S3 each file is one PUT. Every output name is checked to stay inside the
output folder or prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from coverage_combiner.__about__ import __version__
from coverage_combiner.combine import CombineResult
from coverage_combiner.compare import add_changes
from coverage_combiner.errors import CombinerError, MissingSourceError
from coverage_combiner.merge import Merged, bits_to_numbits, split_context
from coverage_combiner.reader import COMBINED_MARKER
from coverage_combiner.remap import PathRemapper
from coverage_combiner.report_config import (
    ReportConfig,
    choose_config,
    html_title,
    reporting_coverage,
)
from coverage_combiner.summary import build_summary, render_markdown
from coverage_combiner.unexecuted import is_source_folder, unexecuted_candidates

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: An output format.
Format = Literal["data", "json", "xml", "lcov", "html", "markdown"]
FORMATS: tuple[Format, ...] = get_args(Format)
DEFAULT_FORMATS = ("data", "json", "html")
#: Formats that cannot be made without the measured source files.
SOURCE_REPORTS = ("xml", "lcov", "html")
FILE_NAMES = {
    "data": ".coverage",
    "json": "coverage-summary.json",
    "xml": "coverage.xml",
    "lcov": "coverage.lcov",
    "html": "html",
    "markdown": "coverage-summary.md",
}


def output_names(stem: str | None = None) -> dict[str, str]:
    """The file name of each format: the defaults, or each named after ``stem``.

    ``stem="2026-01-15"`` gives ``2026-01-15.json``, ``2026-01-15.coverage``,
    ``2026-01-15.xml``, ``2026-01-15.lcov``, ``2026-01-15.md`` and the folder
    ``2026-01-15-html``, so the reports of different days or runs can share a
    folder without overwriting each other.
    """
    if stem is None:
        return dict(FILE_NAMES)
    if not stem or "/" in stem or stem in (".", ".."):
        raise CombinerError(
            f"output name {stem!r} is not a file name: give a plain name such as "
            "2026-01-15 (no '/', and not empty, '.' or '..')"
        )
    return {
        "data": f"{stem}.coverage",
        "json": f"{stem}.json",
        "xml": f"{stem}.xml",
        "lcov": f"{stem}.lcov",
        "html": f"{stem}-html",
        "markdown": f"{stem}.md",
    }


@dataclass
class Written:
    """Where each output went, the summary, and the problem that stopped reports, if any."""

    outputs: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    missing_source: MissingSourceError | None = None
    #: The coverage.py configuration the report was made with.
    config: ReportConfig = field(default_factory=ReportConfig)
    #: From that configuration: the threshold (None: not set) and the digits shown.
    fail_under: float | None = None
    precision: int = 0
    #: The total percentage at full precision (None: no source to compute it).
    total: float | None = None


def parse_formats(value: str | Iterable[str]) -> tuple[str, ...]:
    """``data,json,html`` → a tuple of known formats, or a clear error."""
    items = value.split(",") if isinstance(value, str) else list(value)
    formats = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise CombinerError(
            f"unknown format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}"
        )
    return formats


def write_outputs(
    result: CombineResult,
    destination: str,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    remap: PathRemapper | None = None,
    s3: S3Client | None = None,
    name: str | None = None,
    previous: tuple[str, dict[str, Any]] | None = None,
    rcfile: str | None = None,
    unexecuted: bool = True,
) -> Written:
    """Write ``formats`` for ``result`` to a folder or ``s3://bucket/prefix``.

    ``name`` names every output after it (see :func:`output_names`); by
    default they have fixed names. ``s3`` is the client for an S3 destination
    (default: boto3's own configuration). The JSON summary lists where every
    output went. ``previous`` is an earlier summary and where it was read from:
    the summary shows the change since then (:mod:`coverage_combiner.compare`).
    The reports follow the user's coverage.py configuration:
    ``rcfile``, else the one :func:`~coverage_combiner.report_config.choose_config` finds.
    With ``unexecuted`` (the default), every Python file of a function's
    folder given with ``--source-root`` that never ran is reported at 0 %
    (:mod:`coverage_combiner.unexecuted`).
    """
    names = output_names(name)
    given = remap or PathRemapper()
    remap = resolve_sources(result.merged, given)
    config = choose_config(rcfile, remap)
    folders = source_folders(given, remap) if unexecuted else []
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-") as work:
        staging = Path(work) / "out"
        staging.mkdir()
        written = _render(
            result,
            staging,
            formats,
            remap,
            names,
            config=config,
            folders=folders,
            previous=previous,
        )
        if "json" in formats:
            # The summary says where everything went, itself included.
            (staging / names["json"]).touch()
            outputs = _destinations(staging, destination, names)
            summary = {**written.summary, "outputs": outputs}
            # Written as it is encoded: the summary has an entry per function,
            # and its text in one string would be a second copy of it.
            with (staging / names["json"]).open("w") as stream:
                json.dump(summary, stream, indent=2)
        if destination.startswith("s3://"):
            written.outputs = _publish_s3(staging, destination, s3, names)
        else:
            written.outputs = _publish_local(staging, Path(destination), names)
    return written


def _destinations(staging: Path, destination: str, names: Mapping[str, str]) -> dict[str, str]:
    """Where each output in ``staging`` is going to be published."""
    if destination.startswith("s3://"):
        bucket, prefix = _s3_destination(destination)
        where = {kind: f"s3://{bucket}/{prefix}{name}" for kind, name in names.items()}
    else:
        where = {kind: str(safe_target(Path(destination), name)) for kind, name in names.items()}
    return {kind: where[kind] for kind, name in names.items() if (staging / name).exists()}


def resolve_sources(merged: Merged, remap: PathRemapper) -> PathRemapper:
    """``remap`` with every function's code folder found (or its absence explained)."""
    measured: dict[str | None, set[str]] = {}
    for context, path in merged.measured_keys():
        measured.setdefault(function_of(context), set()).add(path)
    return remap.resolve(measured)


def source_folders(given: PathRemapper, resolved: PathRemapper) -> list[str]:
    """The functions' code folders the user named: given per function, or found under the
    source root or in the zip given (not under the working folder, which may be anything)."""
    folders = {
        folder
        for function, folder in resolved.function_roots.items()
        if function not in resolved.unresolved
        and (function in given.function_roots or given.root is not None)
        and is_source_folder(folder)
    }
    return sorted(folders)


def function_of(context: str) -> str | None:
    """The function a ``function@version`` context names; None for any other context."""
    function, version = split_context(context)
    return function if version is not None else None


def _render(
    result: CombineResult,
    staging: Path,
    formats: Sequence[str],
    remap: PathRemapper,
    names: Mapping[str, str],
    *,
    previous: tuple[str, dict[str, Any]] | None = None,
    config: ReportConfig,
    folders: Sequence[str] = (),
) -> Written:
    data_path = staging / names["data"]
    write_data_file(result.merged, data_path, remap)
    if folders and result.merged.files():
        add_unexecuted(data_path, folders)
    written = Written(config=config)
    reports = [f for f in formats if f in SOURCE_REPORTS]
    needs_analysis = bool(reports) or "json" in formats or "markdown" in formats
    if needs_analysis:
        # Read only for reports: a data file for a later merge needs no configuration.
        settings = reporting_coverage(data_path, config)
        written.precision = int(settings.get_option("report:precision"))  # type: ignore[arg-type]
        threshold = settings.get_option("report:fail_under")
        written.fail_under = float(threshold) if threshold else None  # type: ignore[arg-type]
    coverage_json: dict[str, Any] | None = None
    if needs_analysis and result.merged.files():
        missing = missing_sources(data_path)
        if not missing:
            coverage_json, written.missing_source = _coverage_reports(
                data_path, staging, reports, names, config
            )
        elif reports:
            # Summaries degrade to executed lines without source; these reports cannot.
            written.missing_source = MissingSourceError(missing, remap.problems())
    written.summary = build_summary(result, coverage_json, remap)
    if coverage_json is not None:
        written.total = float(coverage_json["totals"]["percent_covered"])
    written.summary["report"] = _report_settings(written, coverage_json)
    written.summary["warnings"].extend(config.warnings)
    if previous is not None:
        add_changes(written.summary, previous[1], previous[0])
    if "markdown" in formats:
        (staging / names["markdown"]).write_text(render_markdown(written.summary))
    if "data" not in formats:
        data_path.unlink()
    return written


def _report_settings(written: Written, coverage_json: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration the report used, and each percentage as coverage.py prints it."""
    settings: dict[str, Any] = {
        "config_file": written.config.path,
        "precision": written.precision,
        "fail_under": written.fail_under,
    }
    if coverage_json is not None:
        settings["percent_covered_display"] = {
            "total": coverage_json["totals"]["percent_covered_display"],
            "files": {
                path: info["summary"]["percent_covered_display"]
                for path, info in sorted(coverage_json["files"].items())
            },
        }
    return settings


def add_unexecuted(data_path: Path, folders: Sequence[str]) -> None:
    """Add to the data file every Python file of ``folders`` it does not hold, with no lines."""
    from coverage import CoverageData

    data = CoverageData(basename=str(data_path))
    data.read()
    measured = set(data.measured_files())
    new = [
        path for folder in folders for path in unexecuted_candidates(folder) if path not in measured
    ]
    if new:
        data.touch_files(sorted(set(new)))
    data.close()


def write_data_file(merged: Merged, path: Path, remap: PathRemapper | None) -> None:
    """Write the merged data as a standard coverage.py data file.

    With ``remap`` (resolved for ``merged`` by :func:`resolve_sources`), paths
    become the local paths reports read, each function's on their own, and
    refused paths are left out; without, they stay as measured (for data that
    will be merged again elsewhere: the contexts keep the functions apart).
    The file is marked as a combiner's output, so a later combine that finds
    it among its inputs leaves it out.

    coverage.py creates the file (its schema and the kind of data); the rows
    are written here with SQL, key by key in sorted order, straight from the
    merged data (no copy of it is made): line data as the bit sets the merge
    keeps, since coverage.py's ``add_lines`` takes one Python int per line,
    which a dense input would turn into gigabytes; and line data that enters
    branch data as ``(-n, n)`` arcs expanded by SQLite itself
    (:func:`_insert_line_arcs`). ``path`` must be a new file: it is written
    without a journal, and a write that fails leaves it unusable.
    """
    from coverage import CoverageData
    from coverage.numbits import register_sqlite_functions

    path.parent.mkdir(parents=True, exist_ok=True)
    data = CoverageData(basename=str(path), no_disk=False)
    if merged.has_arcs:
        data.add_arcs({})
    else:
        data.add_lines({})
    data.close()
    local = _LocalPaths(remap)
    with contextlib.closing(sqlite3.connect(path)) as db:
        # A new file, published only once it is whole (see write_outputs):
        # a journal would only double the writes of a large result.
        db.execute("pragma journal_mode = off")
        db.execute("pragma synchronous = off")
        register_sqlite_functions(db)
        with db:
            ids = _RowIds(db)
            for key in sorted(merged.line_bits):
                if (where := local(*key)) is None:
                    continue
                file_id, context_id = ids.file(where), ids.context(key[0])
                bits = merged.line_bits[key]
                if merged.has_arcs:
                    _insert_line_arcs(db, file_id, context_id, bits)
                else:
                    # Two measured paths of one local file (``app.py`` and
                    # ``/var/task/app.py``) make one row: their union.
                    db.execute(
                        "insert into line_bits (file_id, context_id, numbits) values (?, ?, ?) "
                        "on conflict (file_id, context_id) "
                        "do update set numbits = numbits_union(numbits, excluded.numbits)",
                        (file_id, context_id, bits_to_numbits(bits)),
                    )
            for key in sorted(merged.branch_arcs):
                if (where := local(*key)) is None:
                    continue
                file_id, context_id = ids.file(where), ids.context(key[0])
                db.executemany(
                    "insert or ignore into arc (file_id, context_id, fromno, tono) "
                    "values (?, ?, ?, ?)",
                    ((file_id, context_id, start, end) for start, end in merged.branch_arcs[key]),
                )
            # coverage.py's meta table holds key/value rows and ignores keys it does
            # not know. Found among the inputs of a later combine, a marked file is
            # left out: its paths are this machine's, not the functions'.
            db.execute(
                "insert or replace into meta (key, value) values (?, ?)",
                (COMBINED_MARKER, __version__),
            )


#: Each byte value (as ``hex()`` spells it) with the bits set in it, highest
#: first: the table that turns a numbits blob into line numbers inside SQLite.
_BYTE_BITS = [
    (f"{value:02X}", bit) for value in range(1, 256) for bit in range(7, -1, -1) if value >> bit & 1
]

#: Every executed line n of a numbits blob as the arc (-n, n), highest line
#: first, so that ``fromno`` ascends as the rows go into the arc table's index.
_LINE_ARCS = """
with recursive byte(i) as (select ? - 1 union all select i - 1 from byte where i > 0)
insert or ignore into arc (file_id, context_id, fromno, tono)
select ?, ?, -(i * 8 + bit), i * 8 + bit
from byte join temp.byte_bits on temp.byte_bits.hex = hex(substr(?, i + 1, 1))
"""


def _insert_line_arcs(db: sqlite3.Connection, file_id: int, context_id: int, bits: int) -> None:
    """Insert each line of ``bits`` as the arc ``(-n, n)``, the expansion done by SQLite.

    A dense input claims up to eight lines per byte, and coverage.py's branch
    data has no way to say "line n ran" but an arc: the rows are the format's
    cost. Made in Python, each row would be a tuple of four ints.
    """
    blob = bits_to_numbits(bits)
    if not blob:
        return
    if not db.execute("select 1 from temp.sqlite_master where name = 'byte_bits'").fetchone():
        db.execute(
            "create temp table byte_bits (hex text, bit integer, primary key (hex, bit)) "
            "without rowid"
        )
        db.executemany("insert into temp.byte_bits (hex, bit) values (?, ?)", _BYTE_BITS)
    db.execute(_LINE_ARCS, (len(blob), file_id, context_id, blob))


class _LocalPaths:
    """Where the data file puts a measured path, per (function, path), looked up once.

    Contexts can be many (hundreds of thousands are valid input) while paths
    are few: the local path string is made once per function and path and
    shared by every key.
    """

    def __init__(self, remap: PathRemapper | None) -> None:
        self._remap = remap
        self._known: dict[tuple[str | None, str], str | None] = {}

    def __call__(self, context: str, measured_path: str) -> str | None:
        if self._remap is None:
            return measured_path
        place = (function_of(context), measured_path)
        if place not in self._known:
            refused = place in self._remap.refused
            self._known[place] = None if refused else self._remap.map(measured_path, place[0])
        return self._known[place]


class _RowIds:
    """The ids of the ``file`` and ``context`` rows of a data file being written."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._files: dict[str, int] = {}
        self._contexts: dict[str, int] = {}

    def file(self, path: str) -> int:
        return self._id("file", "path", path, self._files)

    def context(self, context: str) -> int:
        return self._id("context", "context", context, self._contexts)

    def _id(self, table: str, column: str, value: str, known: dict[str, int]) -> int:
        if value not in known:
            # The table and column names are ours, never from the data.
            cursor = self._db.execute(f"insert into {table} ({column}) values (?)", (value,))  # noqa: S608
            assert cursor.lastrowid is not None
            known[value] = cursor.lastrowid
        return known[value]


def missing_sources(data_path: Path) -> list[str]:
    """Measured files whose source cannot be read (on disk or inside a zip)."""
    from coverage import CoverageData

    data = CoverageData(basename=str(data_path))
    data.read()
    return sorted(name for name in data.measured_files() if not _source_exists(name))


def _source_exists(name: str) -> bool:
    if os.path.exists(name):
        return True
    archive, sep, member = name.partition(".zip/")
    if not sep:
        return False
    try:
        with zipfile.ZipFile(archive + ".zip") as bundle:
            return member in bundle.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _coverage_reports(
    data_path: Path,
    staging: Path,
    reports: Sequence[str],
    names: Mapping[str, str],
    config: ReportConfig,
) -> tuple[dict[str, Any] | None, MissingSourceError | None]:
    """Run coverage.py's reports into ``staging``; on failure leave none of them there.

    A source that disappears or cannot be parsed between the check and the
    report is a missing source (the summaries degrade); any other failure of
    coverage.py is an error. Either way no half-made report is published.
    """
    from coverage.exceptions import CoverageException, NoSource, NotPython

    try:
        return _run_reports(data_path, staging, reports, names, config), None
    except (NoSource, NotPython) as exc:
        _discard_reports(staging, names)
        named = re.findall(r"'([^']+)'", str(exc))
        return None, MissingSourceError(named or [str(exc)])
    except CoverageException as exc:
        _discard_reports(staging, names)
        raise CombinerError(f"coverage.py could not write the reports: {exc}") from exc


def _discard_reports(staging: Path, names: Mapping[str, str]) -> None:
    for kind in (*SOURCE_REPORTS, "coverage-json"):
        target = staging / names.get(kind, _COVERAGE_JSON)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


#: coverage.py's own JSON report, read for the summary and never published.
_COVERAGE_JSON = ".coverage-report.json"


def _run_reports(
    data_path: Path,
    staging: Path,
    reports: Sequence[str],
    names: Mapping[str, str],
    config: ReportConfig,
) -> dict[str, Any]:
    cov = reporting_coverage(data_path, config)
    cov.load()
    json_path = staging / _COVERAGE_JSON
    # The summary reads each file's lines, not their contexts: with contexts,
    # coverage.py's JSON lists every context of every line (1 GB for 250,000).
    cov.json_report(outfile=str(json_path), show_contexts=False, pretty_print=False)
    report: dict[str, Any] = json.loads(json_path.read_text())
    json_path.unlink()
    if "xml" in reports:
        cov.xml_report(outfile=str(staging / names["xml"]))
    if "lcov" in reports:
        cov.lcov_report(outfile=str(staging / names["lcov"]))
    if "html" in reports:
        cov.html_report(
            directory=str(staging / names["html"]),
            show_contexts=True,
            title=html_title(cov),
        )
    return report


def safe_target(base: Path, relative: str) -> Path:
    """``base / relative``, refusing anything that would land outside ``base``."""
    target = (base / relative).resolve()
    if not target.is_relative_to(base.resolve()):
        raise CombinerError(f"refusing to write {relative!r} outside {base}")
    return target


def _publish_local(staging: Path, destination: Path, names: Mapping[str, str]) -> dict[str, str]:
    destination.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, str] = {}
    for kind, name in names.items():
        source = staging / name
        if not source.exists():
            continue
        target = safe_target(destination, name)
        if source.is_dir():
            _swap_folder(source, target)
        else:
            temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        outputs[kind] = str(target)
    return outputs


def _swap_folder(source: Path, target: Path) -> None:
    incoming = target.with_name(f".{target.name}.new-{os.getpid()}")
    outgoing = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(incoming, ignore_errors=True)
    shutil.copytree(source, incoming)
    if target.exists():
        os.replace(target, outgoing)
    os.replace(incoming, target)
    with contextlib.suppress(OSError):
        shutil.rmtree(outgoing)


#: The order outputs are put to S3 in. S3 has no rename and no multi-object
#: transaction, so each object is one whole PUT and the order does the rest:
#: the HTML pages before their index, the reports before the summaries that
#: point at them, the JSON summary (what a pipeline reads) last.
S3_ORDER = ("html", "xml", "lcov", "data", "markdown", "json")


def _s3_destination(destination: str) -> tuple[str, str]:
    """The bucket and the key prefix (a folder) of ``s3://bucket/prefix``."""
    from coverage_combiner.inputs import parse_s3_url

    bucket, prefix = parse_s3_url(destination)
    if ".." in prefix.split("/"):
        raise CombinerError(f"refusing to write under {destination!r}: it contains '..'")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _publish_s3(
    staging: Path, destination: str, client: S3Client | None, names: Mapping[str, str]
) -> dict[str, str]:
    from coverage_combiner.inputs import s3_client

    bucket, prefix = _s3_destination(destination)
    client = client or s3_client()
    outputs: dict[str, str] = {}
    for kind in S3_ORDER:
        name = names[kind]
        source = staging / name
        if not source.exists():
            continue
        # index.html last of the pages: it links to all the others.
        files = (
            sorted(
                (p for p in source.rglob("*") if p.is_file()),
                key=lambda p: (p.name == "index.html", p),
            )
            if source.is_dir()
            else [source]
        )
        for path in files:
            key = prefix + path.relative_to(staging).as_posix()
            try:
                client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            except Exception as exc:  # botocore's ClientError and connection errors
                raise CombinerError(
                    f"cannot write s3://{bucket}/{key}: {exc}; check the bucket name and that "
                    "these credentials may s3:PutObject there"
                ) from exc
        outputs[kind] = f"s3://{bucket}/{prefix}{name}"
    return {kind: outputs[kind] for kind in names if kind in outputs}
