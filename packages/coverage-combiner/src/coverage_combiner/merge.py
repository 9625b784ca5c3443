"""Merge measured data: a union of lines and arcs per (context, file).

Merging is streaming: each file's data is added as it arrives and dropped,
so memory grows with the size of the code measured, not with the number of
data files.

Line data and branch data merge together. If any input holds branch data
(arc rows), the result is branch data, and each executed line ``n`` of a
line-only input enters as the arc ``(-n, n)``: coverage.py derives executed
lines from arcs, so every such line counts as executed, while the branches of
code measured only line by line count as not taken. If no input holds
branch data, the result is line data. Inputs with no rows never decide the
kind. :attr:`Merged.line_contexts` names the contexts whose data came only
from line-only inputs.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from array import array
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coverage_combiner.reader import (
    COMBINED_OUTPUT,
    DEFAULT_MAX_BYTES,
    Arc,
    Contents,
    DataFileReader,
    Rejected,
    parse_arcs,
)

if TYPE_CHECKING:
    from coverage_combiner.claims import ClaimCheck

_NUMBER = re.compile(r"\d+")


def split_context(context: str) -> tuple[str, str | None]:
    """``function@version`` → (function, version); other contexts → (context, None).

    The dynamic part the wrapper adds (``|init``, ``|invocation;run=...``) is
    not part of either.
    """
    # parse_context(context).static, without building an Attribution: this
    # runs for every context of a combine, several times (hundreds of
    # thousands of contexts are valid input).
    static = context.partition("|")[0]
    function, sep, version = static.rpartition("@")
    if not sep or not function:
        return static, None
    return function, version


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key: ``$LATEST`` newest, then numbers numerically, then names."""
    if version in ("$LATEST", "LATEST"):
        return (2, 0, version)
    if _NUMBER.fullmatch(version):
        return (1, int(version), version)
    return (0, 0, version)


Key = tuple[str, str]


def lines_to_bits(lines: Iterable[int]) -> int:
    """Line numbers (positive) as a bit set: bit n is line n."""
    from coverage.numbits import nums_to_numbits

    return int.from_bytes(nums_to_numbits(lines), "little")


def bits_to_numbits(bits: int) -> bytes:
    """A bit set as coverage.py's numbits blob (bit n of the int is line n)."""
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")


def bits_to_lines(bits: int) -> Iterator[int]:
    """The line numbers of a bit set, in order, one at a time."""
    for index, byte in enumerate(bits_to_numbits(bits)):
        if byte:
            base = index * 8
            for bit in range(8):
                if byte >> bit & 1:
                    yield base + bit


@dataclass
class Merged:
    """The union of all accepted inputs.

    Line data stays a bit set per (context, measured path) from the merge to
    the data file written (:attr:`line_bits`): one bit per line, as in the
    inputs, never one Python int per line, so the memory a combine takes stays
    a small multiple of its inputs' size. :attr:`lines` and :attr:`arcs` spell
    the data out as sets, for callers that want them.
    """

    has_arcs: bool
    #: Executed lines of line-only inputs, per (context, measured path), as bit sets.
    line_bits: dict[Key, int] = field(default_factory=dict)
    #: Arcs of inputs that hold branch data, per (context, measured path).
    branch_arcs: dict[Key, set[Arc]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    #: Contexts whose data came only from line-only inputs: in branch data,
    #: code measured without branches (its lines enter as ``(-n, n)`` arcs);
    #: in line data, every context.
    line_contexts: set[str] = field(default_factory=set)

    @property
    def lines(self) -> dict[Key, set[int]]:
        """Executed lines per (context, path), for line data (empty for branch data)."""
        if self.has_arcs:
            return {}
        return {key: set(bits_to_lines(bits)) for key, bits in self.line_bits.items()}

    @property
    def arcs(self) -> dict[Key, set[Arc]]:
        """Arcs per (context, path), for branch data: line-only data as ``(-n, n)`` arcs."""
        if not self.has_arcs:
            return {}
        result = {
            key: {(-n, n) for n in bits_to_lines(bits)} for key, bits in self.line_bits.items()
        }
        for key, arcs in self.branch_arcs.items():
            result.setdefault(key, set()).update(arcs)
        return result

    def measured_keys(self) -> set[Key]:
        """Every (context, measured path) present."""
        return set(self.line_bits) | set(self.branch_arcs)

    def iter_keys(self) -> Iterator[Key]:
        """Every (context, measured path) present, one at a time (a key in both kinds twice)."""
        yield from self.line_bits
        yield from self.branch_arcs

    def contexts(self) -> set[str]:
        """Every context present."""
        return {context for context, _ in self.iter_keys()}

    def files(self) -> set[str]:
        """Every measured path present."""
        return {path for _, path in self.iter_keys()}

    def executed(self) -> dict[Key, int]:
        """Executed lines per (context, path) as bit sets, from line and branch data alike."""
        result: dict[Key, int] = {}
        for key, bits in self.iter_executed():
            result[key] = result.get(key, 0) | bits
        return result

    def iter_executed(self) -> Iterator[tuple[Key, int]]:
        """(key, executed lines as a bit set), one at a time: a key in both kinds comes twice.

        Nothing per key is kept: with hundreds of thousands of contexts a
        copy of every key is what would bound the memory of a combine.
        """
        yield from self.line_bits.items()
        for key, arcs in self.branch_arcs.items():
            yield key, lines_to_bits({n for arc in arcs for n in arc if n > 0})

    def lines_by_file(self) -> dict[str, set[int]]:
        """Executed lines per file, all contexts together."""
        bits: dict[str, int] = {}
        for (_, path), executed in self.executed().items():
            bits[path] = bits.get(path, 0) | executed
        return {path: set(bits_to_lines(executed)) for path, executed in bits.items()}

    def arcs_by_file(self) -> dict[str, set[Arc]]:
        """Executed arcs per file, all contexts together."""
        result: dict[str, set[Arc]] = {}
        for (_, path), arcs in self.arcs.items():
            result.setdefault(path, set()).update(arcs)
        return result

    def only(self, contexts: Container[str]) -> Merged:
        """The data of ``contexts`` alone (the inputs stay those of the whole).

        When ``contexts`` holds every context, the result is this object itself.
        """
        if all(context in contexts for context, _ in self.iter_keys()):
            return self
        return Merged(
            has_arcs=self.has_arcs,
            line_bits={k: v for k, v in self.line_bits.items() if k[0] in contexts},
            branch_arcs={k: v for k, v in self.branch_arcs.items() if k[0] in contexts},
            inputs=list(self.inputs),
            line_contexts={c for c in self.line_contexts if c in contexts},
        )


#: Arc groups already merged are remembered up to this many characters in all:
#: memory stays bounded. Past half of it, the groups remembered become the
#: older generation and the newer starts empty; a group seen in the older
#: generation moves to the newer one, so groups that keep recurring stay known
#: and only those not seen for a while are forgotten (and parsed again if
#: they come back).
KNOWN_GROUP_CHARS = 4_000_000


@dataclass(frozen=True)
class Partial:
    """Some inputs' union, compact enough to send from one process to another.

    ``arcs`` holds each key's arcs as the bytes of an ``array("q")`` of
    from, to pairs; ``lines`` each key's executed lines as a bit set (bit n
    is line n, the integer coverage.py's numbits spell little-endian);
    ``merged`` the (name, content digest) of every input merged.
    """

    arcs: dict[Key, bytes]
    lines: dict[Key, int]
    merged: list[tuple[str, bytes | None]]


class Merger:
    """Validates inputs one by one and accumulates their union in Python sets.

    Each input is read by a :class:`~coverage_combiner.reader.DataFileReader`
    with one statement that lets SQLite group a file's arcs per context and
    file into one string. The same group recurs across thousands of
    containers that ran the same code paths, so a group already merged costs
    a set lookup; only new groups are parsed (and checked). Line bits are
    OR-ed as integers. Byte-identical inputs are read once. :meth:`export` and
    :meth:`absorb` carry a union from process to process.
    """

    def __init__(self, *, schema_version: int | None = None) -> None:
        """``schema_version``: the data schema to accept (default: this coverage.py's)."""
        self._reader = DataFileReader(schema_version)
        self._arcs: dict[Key, set[Arc]] = {}
        #: Arc groups merged already, as (context, path, group), newer and
        #: older generation: seen again, they cost one or two lookups.
        self._known: set[tuple[str, str, str]] = set()
        self._older: set[tuple[str, str, str]] = set()
        self._known_chars = 0
        self._lines: dict[Key, int] = {}
        self._merged: list[tuple[str, bytes | None]] = []
        # What became of each distinct content: merged (with the foreign claims
        # left out) or the reason it was rejected. coverage.py writes nothing
        # that varies between runs into a data file, so containers that ran the
        # same code paths upload identical bytes, and merging them again would
        # change nothing.
        self._seen: dict[bytes, str | tuple[str, ...]] = {}

    @property
    def duplicates(self) -> int:
        """Inputs whose bytes equal an earlier input's (merged once)."""
        digests = [digest for _, digest in self._merged if digest is not None]
        return len(digests) - len(set(digests))

    @property
    def inputs(self) -> list[str]:
        """The inputs merged so far, in the order they were added."""
        return [name for name, _ in self._merged]

    def add_bytes(
        self,
        name: str,
        data: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        combined_ok: bool = False,
        claims: ClaimCheck | None = None,
    ) -> tuple[str, ...]:
        """Validate one untrusted data file and merge it; raise :class:`Rejected` if not.

        A data file that a combine wrote is refused unless ``combined_ok`` (the
        rolling file of the incremental merge is one, read back on purpose).
        ``claims`` decides which of its contexts count (the identity its key
        gives, the run asked for: :mod:`coverage_combiner.claims`); returns the
        foreign claims it left out.
        """
        digest = hashlib.sha256(data).digest()
        if claims is not None:
            digest = claims.salt(digest)
        if digest in self._seen:
            outcome = self._seen[digest]
            if isinstance(outcome, str):
                raise Rejected(outcome)
            foreign = outcome
        else:
            try:
                foreign = self._add_new_bytes(name, data, max_bytes, combined_ok, claims)
            except Rejected as exc:
                self._seen[digest] = str(exc)
                raise
            self._seen[digest] = foreign
        self._merged.append((name, digest))
        return foreign

    def _add_new_bytes(
        self, name: str, data: bytes, max_bytes: int, combined_ok: bool, claims: ClaimCheck | None
    ) -> tuple[str, ...]:
        contents = self._reader.read(data, max_bytes)
        if contents.combined and not combined_ok:
            raise Rejected(COMBINED_OUTPUT)
        foreign: tuple[str, ...] = ()
        if claims is not None:
            contents, foreign = claims.admit(contents)
        self._add_contents(contents)
        return foreign

    def _add_contents(self, contents: Contents) -> None:
        # Every new group is parsed (and so checked) before anything is merged:
        # a rejected input contributes nothing.
        known = self._known
        new: list[tuple[tuple[str, str, str], list[Arc] | None]] = []
        for row in contents.arcs:
            if row not in known:
                new.append((row, None if row in self._older else parse_arcs(row[2])))
        for row, arcs in new:
            if arcs is not None:
                self._arcs.setdefault((row[0], row[1]), set()).update(arcs)
            known.add(row)
            self._known_chars += len(row[2])
        if self._known_chars > KNOWN_GROUP_CHARS // 2:
            self._older = known
            self._known = set()
            self._known_chars = 0
        for context, path, bits in contents.lines:
            key = (context, path)
            self._lines[key] = self._lines.get(key, 0) | bits

    def export(self) -> Partial:
        """This merger's union and inputs, for :meth:`absorb` in another process."""
        return Partial(
            arcs={
                key: array("q", itertools.chain.from_iterable(arcs)).tobytes()
                for key, arcs in self._arcs.items()
            },
            lines=dict(self._lines),
            merged=list(self._merged),
        )

    def absorb(self, partial: Partial) -> None:
        """Merge the union another merger exported (its inputs count as merged here)."""
        for key, raw in partial.arcs.items():
            numbers = array("q")
            numbers.frombytes(raw)
            pairs = iter(numbers)
            self._arcs.setdefault(key, set()).update(zip(pairs, pairs, strict=True))
        for key, bits in partial.lines.items():
            self._lines[key] = self._lines.get(key, 0) | bits
        self._merged.extend(partial.merged)

    def result(self) -> Merged:
        """The merged data: branch data if any input held arcs, else line data."""
        line_contexts = {context for context, _ in self._lines} - {
            context for context, _ in self._arcs
        }
        return Merged(
            has_arcs=bool(self._arcs),
            line_bits=self._lines,
            branch_arcs=self._arcs,
            inputs=self.inputs,
            line_contexts=line_contexts,
        )

    def close(self) -> None:
        """Free the reader's database."""
        self._reader.close()


@dataclass(frozen=True)
class VersionChoice:
    """What ``--function-version`` kept, per function, and what it left out."""

    kept: dict[str, list[str]]
    dropped: dict[str, list[str]]


def select_versions(merged: Merged, version: str = "latest") -> tuple[Merged, VersionChoice]:
    """Keep, per function, the versions ``version`` asks for: ``latest``, ``all`` or one."""
    by_function: dict[str, set[str]] = {}
    # One pass over the distinct static parts: a function's contexts are many
    # (phases, run ids), its versions few.
    for static in {context.partition("|")[0] for context, _ in merged.iter_keys()}:
        function, found = split_context(static)
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
    if not dropped:
        return merged, VersionChoice(kept=kept, dropped=dropped)
    keep_contexts = {
        context
        for context in merged.contexts()
        if (parts := split_context(context))[1] is None or parts[1] in kept.get(parts[0], [])
    }
    return merged.only(keep_contexts), VersionChoice(kept=kept, dropped=dropped)
