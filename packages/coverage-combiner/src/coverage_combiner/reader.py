"""Read one untrusted data file, or say exactly why not.

Every input is untrusted: it is checked before it is opened (size, SQLite
header), loaded into a private in-memory database, and read with plain SQL on
coverage.py's documented schema after checking the schema version. Nothing
from the file is executed: ``CoverageData.loads()`` runs SQL found in its
input and is never used. If the SQL read meets a layout it does not expect,
coverage.py's public API reads the same private copy instead.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coverage.numbits import numbits_to_nums
from coverage.sqldata import SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

Arc = tuple[int, int]


@dataclass
class MeasuredFile:
    """What one data file holds, per (context, measured path)."""

    name: str
    has_arcs: bool
    lines: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    arcs: dict[tuple[str, str], set[Arc]] = field(default_factory=dict)

    @property
    def contexts(self) -> set[str]:
        """The contexts (``function@version``) in the file."""
        return {context for context, _ in (self.arcs if self.has_arcs else self.lines)}


class Rejected(Exception):
    """An input that cannot be merged; the message says why, for the report."""


def check_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """The checks made before a file is opened at all."""
    if not data:
        raise Rejected("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise Rejected(f"{len(data)} bytes is over the size cap of {max_bytes} (--max-bytes)")
    if not data.startswith(SQLITE_HEADER):
        raise Rejected("not a coverage.py data file: not an SQLite database")


#: Everything else the merge needs to know, in one statement (it runs once per
#: input, so the number of statements is a large part of the cost of an input).
_FACTS = """
select
    (select value from {schema}.meta where key = 'has_arcs'),
    exists (select 1 from {schema}.arc),
    exists (select 1 from {schema}.line_bits),
    (select max(length(numbits)) from {schema}.line_bits),
    (select max(max(abs(fromno), abs(tono))) from {schema}.arc)
"""


def describe_schema(db: sqlite3.Connection, schema: str = "main") -> bool:
    """Check the schema of a loaded data file; return whether it holds branch data.

    The objects are checked before any of them is read: a view in place of a
    table would otherwise run the file's own query (an endless recursive one,
    say) inside the combiner.
    """
    # The schema name is ours ("main" or "input"), never from the input.
    _check_objects(db, schema)
    has_arcs, arcs, lines, widest, highest = db.execute(_FACTS.format(schema=schema)).fetchone()
    if arcs and lines:
        raise Rejected("holds both line and branch data; a data file holds one or the other")
    # Line n is bit n % 8 of byte n // 8.
    if (widest or 0) > MAX_LINE // 8 + 1 or (highest or 0) > MAX_LINE:
        raise Rejected(
            f"records line numbers beyond {MAX_LINE:,}, longer than any source file: "
            "corrupt or not written by coverage.py"
        )
    return bool(arcs) or has_arcs in ("1", "true", "True")


def read_data_file(name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> MeasuredFile:
    """Check and read one data file's bytes into Python; raise :class:`Rejected` with the reason."""
    check_bytes(data, max_bytes)
    # The bytes become a private in-memory database: the input itself is never
    # opened for writing, and nothing touches the disk.
    db = sqlite3.connect(":memory:")
    db.execute("pragma trusted_schema = off")
    try:
        try:
            db.deserialize(data)
        except sqlite3.Error as exc:
            raise Rejected(f"cannot be opened as SQLite: {exc}") from exc
        has_arcs = describe_schema(db)
        try:
            return _read_sql(name, db, has_arcs)
        except sqlite3.OperationalError:
            # Same schema number, unexpected layout: let coverage.py read it.
            return _read_public_api(name, data)
    except sqlite3.DatabaseError as exc:
        raise Rejected(f"truncated or corrupt SQLite database: {exc}") from exc
    finally:
        db.close()


#: No source file is this long. A numbits blob of line n is n / 8 bytes and
#: expands to one Python int per line, so a small hostile file could otherwise
#: claim a billion executed lines and exhaust memory.
MAX_LINE = 1 << 20


#: The tables coverage.py's data schema has; the SQL read touches only these.
_TABLES = ("coverage_schema", "meta", "file", "context", "line_bits", "arc")


def _check_objects(db: sqlite3.Connection, schema: str) -> None:
    """Refuse files whose read would run SQL of the file's own, then check the schema.

    coverage.py never writes views or triggers; a table swapped for a view
    would run the view's query inside the merge. Only ``sqlite_master`` is
    read until that is known.
    """
    found = dict(
        db.execute(f"select name, type from {schema}.sqlite_master").fetchall()  # noqa: S608
    )
    foreign = sorted(name for name, kind in found.items() if kind in ("view", "trigger"))
    if foreign:
        raise Rejected(
            f"not a plain coverage.py data file: it defines views or triggers "
            f"({', '.join(foreign)}), which coverage.py never writes"
        )
    if found.get("coverage_schema") != "table":
        raise Rejected("not a coverage.py data file: no coverage_schema table")
    version = _schema_version(db, schema)
    if version != SCHEMA_VERSION:
        raise Rejected(
            f"written by another coverage.py (data schema {version}; this combiner reads "
            f"schema {SCHEMA_VERSION}): combine it with a matching coverage.py"
        )
    missing = [name for name in _TABLES if found.get(name) != "table"]
    if missing:
        raise Rejected(
            f"not a coverage.py data file: no {', '.join(missing)} table(s) "
            f"(schema {SCHEMA_VERSION} has {', '.join(_TABLES)})"
        )


def _schema_version(db: sqlite3.Connection, schema: str = "main") -> object:
    """The stored schema version, as stored: any value at all, in a hostile file."""
    row = db.execute(f"select version from {schema}.coverage_schema").fetchone()  # noqa: S608
    return row[0] if row else None


def _read_sql(name: str, db: sqlite3.Connection, has_arcs: bool) -> MeasuredFile:
    paths = dict(db.execute("select id, path from file").fetchall())
    contexts = dict(db.execute("select id, context from context").fetchall())
    measured = MeasuredFile(name=name, has_arcs=has_arcs)
    if has_arcs:
        for file_id, context_id, fromno, tono in db.execute(
            "select file_id, context_id, fromno, tono from arc"
        ):
            key = (contexts.get(context_id, ""), paths[file_id])
            measured.arcs.setdefault(key, set()).add((int(fromno), int(tono)))
    else:
        for file_id, context_id, numbits in db.execute(
            "select file_id, context_id, numbits from line_bits"
        ):
            key = (contexts.get(context_id, ""), paths[file_id])
            measured.lines.setdefault(key, set()).update(numbits_to_nums(numbits))
    return measured


def _read_public_api(name: str, raw: bytes) -> MeasuredFile:
    from coverage import CoverageData
    from coverage.exceptions import CoverageException

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.coverage"
        path.write_bytes(raw)
        return _read_with_coverage(name, CoverageData(basename=str(path)), CoverageException)


def _read_with_coverage(name: str, data: Any, error: type[Exception]) -> MeasuredFile:
    try:
        data.read()
        measured = MeasuredFile(name=name, has_arcs=data.has_arcs())
        for measured_path in data.measured_files():
            for context in data.measured_contexts():
                # Query contexts are regular expressions: match this one exactly.
                data.set_query_contexts([f"^{re.escape(context)}$"])
                if measured.has_arcs:
                    arcs = data.arcs(measured_path) or []
                    if arcs:
                        measured.arcs[(context, measured_path)] = set(arcs)
                else:
                    lines = data.lines(measured_path) or []
                    if lines:
                        measured.lines[(context, measured_path)] = set(lines)
    except error as exc:
        raise Rejected(f"coverage.py cannot read it: {exc}") from exc
    return measured
