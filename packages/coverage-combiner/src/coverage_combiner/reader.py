"""Read one untrusted data file, or say exactly why not.

Every input is untrusted: it is checked before it is opened (size, SQLite
header), loaded into a private in-memory database, and read with plain SQL on
coverage.py's documented schema after checking the schema version. Nothing
from the file is executed: ``CoverageData.loads()`` runs SQL found in its
input and is never used. A file whose tables lack the columns of that schema
is rejected: coverage.py reads the same columns, so it could not read the
file either.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coverage_wrapper.limits import MAX_CLAIMED_LINES, MAX_INPUT_BYTES, MAX_LINE

SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_MAX_BYTES = MAX_INPUT_BYTES

Arc = tuple[int, int]


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


_BEYOND = (
    f"records line numbers beyond {MAX_LINE:,}, longer than any source file: "
    "corrupt or not written by coverage.py"
)
_TOO_MANY_LINES = (
    f"claims more than {MAX_CLAIMED_LINES:,} executed lines in all (summed over its contexts "
    "and files), far more than real data holds: corrupt or not written by coverage.py"
)
_NOT_NUMBERS = (
    "records line numbers that are not integers, or line bits that are not a blob: "
    "corrupt or not written by coverage.py"
)


#: The tables coverage.py's data schema has; the SQL read touches only these.
_TABLES = ("coverage_schema", "meta", "file", "context", "line_bits", "arc")


def _check_layout(
    found: dict[str, str], version: Callable[[], object], expected: int | None = None
) -> None:
    """Check the objects a file defines (name → type, from ``sqlite_master``).

    coverage.py never writes views or triggers; a table swapped for a view
    would run the view's query inside the merge. ``version`` reads the stored
    schema version; it is called only once ``coverage_schema`` is known to be
    a table. ``expected`` is the schema version to accept (default: this
    coverage.py's).
    """
    foreign = sorted(name for name, kind in found.items() if kind in ("view", "trigger"))
    if foreign:
        raise Rejected(
            f"not a plain coverage.py data file: it defines views or triggers "
            f"({', '.join(foreign)}), which coverage.py never writes"
        )
    if found.get("coverage_schema") != "table":
        raise Rejected("not a coverage.py data file: no coverage_schema table")
    expected = schema_version() if expected is None else expected
    _check_version(version(), expected)
    missing = [name for name in _TABLES if found.get(name) != "table"]
    if missing:
        raise Rejected(
            f"not a coverage.py data file: no {', '.join(missing)} table(s) "
            f"(schema {expected} has {', '.join(_TABLES)})"
        )


def _check_version(version: object, expected: int) -> None:
    if version != expected:
        raise Rejected(
            f"written by another coverage.py (data schema {version}; this combiner reads "
            f"schema {expected}): combine it with a matching coverage.py"
        )


@functools.cache
def schema_version() -> int:
    """The data schema version of the installed coverage.py, the only one read.

    Imported on first use: importing coverage.py costs tens of milliseconds,
    which a process that only reads data files need not pay at import time.
    """
    from coverage.sqldata import SCHEMA_VERSION

    return SCHEMA_VERSION


def _schema_version(db: sqlite3.Connection, schema: str = "main") -> object:
    """The stored schema version, as stored: any value at all, in a hostile file."""
    row = db.execute(f"select version from {schema}.coverage_schema").fetchone()  # noqa: S608
    return row[0] if row else None


@dataclass(slots=True)
class Contents:
    """The rows of one data file, read and checked, for a merge.

    Each row is (context, measured path, data). For branch data, data is the
    arcs of that context and path as one string built by SQLite, the from
    lines, a comma, the to lines (``"-1 1 2,1 2 -1"``): one Python object per
    group instead of one per arc, and a group that recurs across inputs
    compares as one string. Groups are checked when :func:`parse_arcs` first
    reads them. For line data, data is the executed lines as a bit set (bit n
    is line n: coverage.py's numbits blob read as a little-endian integer),
    checked.
    """

    arcs: list[tuple[str, str, str]]
    lines: list[tuple[str, str, int]]
    #: Written by a combine (it carries :data:`COMBINED_MARKER`), not by a function.
    combined: bool = False


#: The key in coverage.py's ``meta`` table that marks a data file a combine wrote.
COMBINED_MARKER = "lambda_coverage_combined"
#: Why such a file found among the inputs is left out.
COMBINED_OUTPUT = (
    "a data file written by lambda-coverage combine, not by a function: outputs are never "
    "read back as inputs (keep reports out of the folder the data is combined from)"
)


#: The read of one data file in two statements (its objects are checked
#: first, apart). The names: the schema version and the has_arcs flag (tag 0),
#: the rows of ``file`` (1) and ``context`` (2). Then the data: the arcs
#: grouped per file and context (3), the line bits (4), read row by row as
#: they come, never all at once: a valid file can hold hundreds of thousands
#: of contexts, and a list of every row would outweigh the file several
#: times. Values are checked in Python, row by row (the line bits) or group by
#: group (:func:`parse_arcs`): checks in SQL would run for every arc of every
#: input, which costs more than all of the rest of the read.
_READ_NAMES = """
select 0, (select version from coverage_schema), (select value from meta where key = 'has_arcs'),
    (select value from meta where key = 'lambda_coverage_combined')
union all select 1, id, path, null from file
union all select 2, id, context, null from context
"""
_READ_DATA = """
select 3, file_id, context_id, group_concat(fromno, ' ') || ',' || group_concat(tono, ' ')
    from arc group by file_id, context_id
union all select 4, file_id, context_id, numbits from line_bits
"""

_MASTER = "select type, name, tbl_name, rootpage, sql from sqlite_master"


class DataFileReader:
    """Reads data files one after another, each into a private in-memory database.

    SQLite keeps a connection's parsed schema across ``deserialize`` when the
    new file's schema cookie is the same, and goes on reading tables at the
    root pages of the file it was parsed from: a file could make every later
    file be read wrongly. So a connection is only ever reused for a file whose
    header and ``sqlite_master`` rows are identical to those of the file its
    schema was parsed from (then the parse would be identical too); any other
    file gets a new connection. Thousands of files written by one coverage.py
    share one layout, so each is read with two prepared statements and no
    schema parse.
    """

    def __init__(self, schema_version: int | None = None) -> None:
        #: The data schema version read (given by a process that knows it
        #: already, or this coverage.py's, looked up at the first file).
        self._expected = schema_version
        self._db: sqlite3.Connection | None = None
        #: (header fields, sqlite_master rows) of the file the schema was parsed from.
        self._layout: tuple[bytes, list[Any]] | None = None

    def read(self, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Contents:
        """Check and read one data file; raise :class:`Rejected` with the reason."""
        check_bytes(data, max_bytes)
        # Page size and format bytes, then schema cookie, schema format, text
        # encoding, user version and the rest of what a schema parse reads.
        header = data[16:24] + data[40:72]
        try:
            if self._layout is not None and self._layout[0] == header:
                db = self._connection()
                _load(db, data)
                if db.execute(_MASTER).fetchall() == self._layout[1]:
                    return _contents(db, self._version())
            return self._read_new_layout(data, header)
        except sqlite3.OperationalError as exc:
            # The tables are there, their columns are not coverage.py's.
            self.close()
            raise Rejected(
                f"not a coverage.py data file: its tables lack the columns of schema "
                f"{self._version()} ({exc})"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise Rejected(f"truncated or corrupt SQLite database: {exc}") from exc

    def _read_new_layout(self, data: bytes, header: bytes) -> Contents:
        self.close()
        db = self._connection()
        _load(db, data)
        master = db.execute(_MASTER).fetchall()
        found = {name: kind for kind, name, *_ in master}
        _check_layout(found, lambda: _schema_version(db), self._version())
        contents = _contents(db, None)
        # Only now is the parsed schema known to be this file's, and good.
        self._layout = (header, master)
        return contents

    def _version(self) -> int:
        if self._expected is None:
            self._expected = schema_version()
        return self._expected

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(":memory:")
            # Functions are never called from the schema of a file being read.
            self._db.execute("pragma trusted_schema = off")
        return self._db

    def close(self) -> None:
        """Free the connection (the next read opens a new one)."""
        if self._db is not None:
            self._db.close()
        self._db = None
        self._layout = None


def _load(db: sqlite3.Connection, data: bytes) -> None:
    try:
        db.deserialize(data)
    except sqlite3.Error as exc:
        raise Rejected(f"cannot be opened as SQLite: {exc}") from exc


def _contents(db: sqlite3.Connection, version: int | None) -> Contents:
    """Read and check the rows of :data:`_READ_NAMES` and :data:`_READ_DATA` into :class:`Contents`.

    ``version`` is the schema version to check for (None: checked already).
    """
    # A compound select promises no order: sort the rows out by tag.
    stored: object = None
    combined = False
    paths: dict[object, str] = {}
    contexts: dict[object, str] = {}
    for row in db.execute(_READ_NAMES):
        tag = row[0]
        if tag == 0:
            stored = row[1]
            combined = row[3] is not None
        elif tag == 1:
            paths[row[1]] = _text(row[2])
        else:
            contexts[row[1]] = _text(row[2])
    if version is not None:
        _check_version(stored, version)
    arcs: list[tuple[str, str, str]] = []
    lines: list[tuple[str, str, int]] = []
    # Which kinds of rows the file holds, rows of unknown files or contexts included.
    kinds: set[int] = set()
    # A combine's own output (refused as an input unless read back on purpose)
    # holds the union of many inputs: the budget is one input's.
    budget = MAX_CLAIMED_LINES if not combined else None
    claimed = 0
    for tag, file_id, context_id, data in db.execute(_READ_DATA):
        _check_value(tag, data)
        kinds.add(tag)
        path, context = paths.get(file_id), contexts.get(context_id)
        if tag == 3:
            if path is not None and context is not None:
                arcs.append((context, path, data))
            continue
        bits = int.from_bytes(data, "little")
        claimed += bits.bit_count()
        if budget is not None and claimed > budget:
            raise Rejected(_TOO_MANY_LINES)
        if path is not None and context is not None:
            lines.append((context, path, bits))
    if len(kinds) == 2:
        raise Rejected("holds both line and branch data; a data file holds one or the other")
    return Contents(arcs, lines, combined)


def _check_value(tag: int, data: object) -> None:
    if not isinstance(data, str if tag == 3 else bytes):
        raise Rejected(_NOT_NUMBERS)
    # Line n is bit n % 8 of byte n // 8.
    if tag == 4 and len(data) > MAX_LINE // 8 + 1:
        raise Rejected(_BEYOND)


def parse_arcs(group: str) -> list[Arc]:
    """The arcs of one group of :class:`Contents`, checked; :class:`Rejected` if bad."""
    starts, _, ends = group.partition(",")
    try:
        froms = list(map(int, starts.split()))
        tos = list(map(int, ends.split()))
    except ValueError:
        raise Rejected(_NOT_NUMBERS) from None
    if len(froms) != len(tos):
        raise Rejected(_NOT_NUMBERS)
    # Four passes of min and max cost less than one of abs on every number.
    if froms and (
        max(froms) > MAX_LINE
        or min(froms) < -MAX_LINE
        or max(tos) > MAX_LINE
        or min(tos) < -MAX_LINE
    ):
        raise Rejected(_BEYOND)
    return list(zip(froms, tos, strict=True))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise Rejected(
            f"records a path or context that is not text ({value!r:.40}): "
            "corrupt or not written by coverage.py"
        )
    return value
