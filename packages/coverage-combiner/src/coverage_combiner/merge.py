"""Merge measured data: a union of lines and arcs per (context, file).

Merging is streaming: each file's data is added as it arrives and dropped,
so memory grows with the size of the code measured, not with the number of
data files. Line data and branch data cannot be mixed (coverage.py refuses
to); both are collected apart and, at the end, the kind most inputs have
wins and the inputs of the other kind are reported as rejected.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass, field

from coverage.numbits import numbits_to_nums, nums_to_numbits, register_sqlite_functions

from coverage_combiner.reader import (
    DEFAULT_MAX_BYTES,
    Arc,
    MeasuredFile,
    Rejected,
    check_bytes,
    describe_schema,
    read_data_file,
)

_NUMBER = re.compile(r"\d+")


def split_context(context: str) -> tuple[str, str | None]:
    """``function@version`` → (function, version); other contexts → (context, None)."""
    function, sep, version = context.rpartition("@")
    if not sep or not function:
        return context, None
    return function, version


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key: ``$LATEST`` newest, then numbers numerically, then names."""
    if version in ("$LATEST", "LATEST"):
        return (2, 0, version)
    if _NUMBER.fullmatch(version):
        return (1, int(version), version)
    return (0, 0, version)


@dataclass
class Merged:
    """The union of all accepted inputs."""

    has_arcs: bool
    lines: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    arcs: dict[tuple[str, str], set[Arc]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)

    def contexts(self) -> set[str]:
        """Every context present."""
        return {context for context, _ in (self.arcs if self.has_arcs else self.lines)}

    def files(self) -> set[str]:
        """Every measured path present."""
        return {path for _, path in (self.arcs if self.has_arcs else self.lines)}

    def lines_by_file(self) -> dict[str, set[int]]:
        """Executed lines per file, all contexts together."""
        result: dict[str, set[int]] = {}
        if self.has_arcs:
            for (_, path), arcs in self.arcs.items():
                target = result.setdefault(path, set())
                target.update(a for a, _ in arcs if a > 0)
                target.update(b for _, b in arcs if b > 0)
        else:
            for (_, path), lines in self.lines.items():
                result.setdefault(path, set()).update(lines)
        return result

    def arcs_by_file(self) -> dict[str, set[Arc]]:
        """Executed arcs per file, all contexts together."""
        result: dict[str, set[Arc]] = {}
        for (_, path), arcs in self.arcs.items():
            result.setdefault(path, set()).update(arcs)
        return result


_ACCUMULATOR = """
create table file (id integer primary key, path text unique);
create table context (id integer primary key, context text unique);
create table arc (
    file_id integer, context_id integer, fromno integer, tono integer,
    unique (file_id, context_id, fromno, tono)
);
create table line_bits (
    file_id integer, context_id integer, numbits blob, unique (file_id, context_id)
);
"""

# Input ids become ours by joining on the path and the context text.
_MERGE_FILES = "insert or ignore into main.file (path) select path from input.file"
_MERGE_CONTEXTS = "insert or ignore into main.context (context) select context from input.context"
_MERGE_ARCS = """
insert or ignore into main.arc (file_id, context_id, fromno, tono)
select f.id, c.id, a.fromno, a.tono
from input.arc a
join input.file fi on fi.id = a.file_id join main.file f on f.path = fi.path
join input.context ci on ci.id = a.context_id join main.context c on c.context = ci.context
"""
_MERGE_LINES = """
insert into main.line_bits (file_id, context_id, numbits)
select f.id, c.id, l.numbits
from input.line_bits l
join input.file fi on fi.id = l.file_id join main.file f on f.path = fi.path
join input.context ci on ci.id = l.context_id join main.context c on c.context = ci.context
where true
on conflict (file_id, context_id) do update set numbits = numbits_union(numbits, excluded.numbits)
"""


class Merger:
    """Accumulates inputs in an in-memory SQLite database; SQLite does the union.

    Each input's bytes are loaded into an attached in-memory schema and
    merged with ``insert ... select``: the per-line work happens in SQLite's
    C code, not in Python, which is what makes this faster than reading
    each file through coverage.py. :meth:`result` picks the data kind most
    inputs have and applies nothing else.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:")
        # Functions are never called from the schema of a file being read.
        self._db.execute("pragma trusted_schema = off")
        register_sqlite_functions(self._db)
        self._db.executescript(_ACCUMULATOR)
        self._db.execute("attach database ':memory:' as input")
        self._inputs: dict[bool, list[str]] = {True: [], False: []}
        # What became of each distinct content: its kind (branch data or not),
        # or why it was rejected. coverage.py writes nothing that varies between
        # runs into a data file, so containers that ran the same code paths
        # upload identical bytes, and merging them again would change nothing.
        self._seen: dict[bytes, bool | str] = {}
        #: Inputs whose bytes equal an earlier input's: not merged again.
        self.duplicates = 0

    def add_bytes(self, name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Validate one untrusted data file and merge it; raise :class:`Rejected` if not."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        seen = self._seen.get(digest)
        if isinstance(seen, bool):
            self.duplicates += 1
            self._inputs[seen].append(name)
            return
        if isinstance(seen, str):
            raise Rejected(seen)
        try:
            self._seen[digest] = self._add_new_bytes(name, data, max_bytes)
        except Rejected as exc:
            self._seen[digest] = str(exc)
            raise

    def _add_new_bytes(self, name: str, data: bytes, max_bytes: int) -> bool:
        check_bytes(data, max_bytes)
        try:
            self._db.deserialize(data, name="input")
        except sqlite3.Error as exc:
            raise Rejected(f"cannot be opened as SQLite: {exc}") from exc
        try:
            has_arcs = describe_schema(self._db, "input")
            with self._db:
                self._db.execute(_MERGE_FILES)
                self._db.execute(_MERGE_CONTEXTS)
                self._db.execute(_MERGE_ARCS if has_arcs else _MERGE_LINES)
        except sqlite3.OperationalError:
            # Same schema number, unexpected layout: let coverage.py read it.
            measured = read_data_file(name, data, max_bytes=max_bytes)
            self.add(measured)
            return measured.has_arcs
        except sqlite3.DatabaseError as exc:
            raise Rejected(f"truncated or corrupt SQLite database: {exc}") from exc
        self._inputs[has_arcs].append(name)
        return has_arcs

    def add(self, measured: MeasuredFile) -> None:
        """Merge data already read into Python (the slow path)."""
        with self._db:
            for context, path in {*measured.lines, *measured.arcs}:
                self._db.execute("insert or ignore into main.file (path) values (?)", (path,))
                self._db.execute(
                    "insert or ignore into main.context (context) values (?)", (context,)
                )
            for (context, path), arcs in measured.arcs.items():
                ids = self._ids(context, path)
                self._db.executemany(
                    "insert or ignore into main.arc values (?, ?, ?, ?)",
                    [(*ids, a, b) for a, b in arcs],
                )
            for (context, path), lines in measured.lines.items():
                self._db.execute(
                    "insert into main.line_bits values (?, ?, ?) on conflict (file_id, context_id) "
                    "do update set numbits = numbits_union(numbits, excluded.numbits)",
                    (*self._ids(context, path), nums_to_numbits(lines)),
                )
        self._inputs[measured.has_arcs].append(measured.name)

    def _ids(self, context: str, path: str) -> tuple[int, int]:
        file_id = self._db.execute("select id from main.file where path = ?", (path,)).fetchone()[0]
        context_id = self._db.execute(
            "select id from main.context where context = ?", (context,)
        ).fetchone()[0]
        return int(file_id), int(context_id)

    def result(self, *, anchor: str | None = None) -> tuple[Merged, list[tuple[str, str]]]:
        """The merged data of the majority kind, and the (input, reason) of the rest.

        When the input named ``anchor`` was merged, its kind wins instead of the
        majority: an accumulated file must never be dropped for a few newcomers.
        """
        arcs_inputs, lines_inputs = self._inputs[True], self._inputs[False]
        has_arcs = len(arcs_inputs) >= len(lines_inputs)
        if anchor is not None and anchor in arcs_inputs + lines_inputs:
            has_arcs = anchor in arcs_inputs
        keep, drop = (arcs_inputs, lines_inputs) if has_arcs else (lines_inputs, arcs_inputs)
        merged = Merged(has_arcs=has_arcs, inputs=list(keep))
        if has_arcs:
            for context, path, fromno, tono in self._db.execute(
                "select c.context, f.path, a.fromno, a.tono from main.arc a "
                "join main.file f on f.id = a.file_id join main.context c on c.id = a.context_id"
            ):
                merged.arcs.setdefault((context, path), set()).add((fromno, tono))
        else:
            for context, path, numbits in self._db.execute(
                "select c.context, f.path, l.numbits from main.line_bits l "
                "join main.file f on f.id = l.file_id join main.context c on c.id = l.context_id"
            ):
                merged.lines.setdefault((context, path), set()).update(numbits_to_nums(numbits))
        kind = "branch" if has_arcs else "line"
        other = "line" if has_arcs else "branch"
        reason = (
            f"{other} data among {len(keep)} files of {kind} data; coverage.py cannot "
            f"mix them: measure every function with the same COVERAGE_BRANCH_COVERAGE"
        )
        return merged, [(name, reason) for name in drop]

    def close(self) -> None:
        """Free the accumulator."""
        self._db.close()


@dataclass(frozen=True)
class VersionChoice:
    """What ``--version`` kept, per function, and what it left out."""

    kept: dict[str, list[str]]
    dropped: dict[str, list[str]]


def select_versions(merged: Merged, version: str = "latest") -> tuple[Merged, VersionChoice]:
    """Keep, per function, the versions ``version`` asks for: ``latest``, ``all`` or one."""
    by_function: dict[str, set[str]] = {}
    for context in merged.contexts():
        function, found = split_context(context)
        if found is not None:
            by_function.setdefault(function, set()).add(found)
    kept: dict[str, list[str]] = {}
    dropped: dict[str, list[str]] = {}
    for function, versions in by_function.items():
        ordered = sorted(versions, key=version_order)
        if version == "all":
            chosen = ordered
        elif version == "latest":
            chosen = ordered[-1:]
        else:
            chosen = [v for v in ordered if v in (version, f"${version}")]
        kept[function] = chosen
        if len(chosen) != len(ordered):
            dropped[function] = [v for v in ordered if v not in chosen]
    keep_contexts = {
        context
        for context in merged.contexts()
        if (parts := split_context(context))[1] is None or parts[1] in kept.get(parts[0], [])
    }
    result = Merged(has_arcs=merged.has_arcs, inputs=list(merged.inputs))
    result.lines = {k: v for k, v in merged.lines.items() if k[0] in keep_contexts}
    result.arcs = {k: v for k, v in merged.arcs.items() if k[0] in keep_contexts}
    return result, VersionChoice(kept=kept, dropped=dropped)
