"""Fuzzing the combiner with hostile data files: mutated, truncated, random, crafted SQLite.

Every example runs the command line on a sandbox folder: good data files, one
hostile file, a source root, a canary file outside it, and the output folder.
Properties: the run ends within a bound with exit 0 (the hostile file merged
harmlessly), 4 (rejected, by name) or 1 for a measured path whose source is
missing under the source root (the reports that need it are not made, the data
file and the summary are); no traceback; nothing is written outside
``--output``; no report holds the canary (no read outside the source roots);
the good files' lines are merged exactly.

The default suite runs a few dozen examples; set ``LAMBDA_COVERAGE_FUZZ_EXAMPLES``
for a soak (``LAMBDA_COVERAGE_FUZZ_EXAMPLES=5000 pytest tests/combiner/test_fuzz.py``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage_combiner.cli import main
from coverage_wrapper.untrusted_text import terminal_text
from tests.combiner.conftest import write_data

EXAMPLES = int(os.environ.get("LAMBDA_COVERAGE_FUZZ_EXAMPLES", "40"))
#: No example may run longer than this (seconds): a hang fails the test.
BOUND = 20
CANARY = "CANARY_7f3e_NEVER_IN_A_REPORT"
GOOD = {"good@1": {"good.py": {1, 2, 4}}}
GOOD_ARCS = {"arcs@1": {"branchy.py": {(-1, 1), (1, 2), (2, -1)}}}


def _base_files() -> list[bytes]:
    """Valid data files made with coverage.py's public API, to mutate."""
    with tempfile.TemporaryDirectory() as folder:
        made = [
            write_data(Path(folder) / "lines.coverage", lines={"fuzz@1": {"fuzz.py": {1, 3, 9}}}),
            write_data(
                Path(folder) / "arcs.coverage",
                arcs={"fuzz@2": {"fuzz.py": {(-1, 1), (1, 3), (3, -1)}}},
            ),
        ]
        return [path.read_bytes() for path in made]


BASES = _base_files()


def _sql(base: bytes, statement: str, *values: object) -> bytes:
    """``base`` changed by one SQL statement (a crafted file)."""
    db = sqlite3.connect(":memory:")
    db.deserialize(base)
    db.execute(statement, values)
    db.commit()
    data = db.serialize()
    db.close()
    return data


_VALUES = ["null", "'text'", "x'00ff'", "1.5", "-1", "9223372036854775807", "''"]
_COLUMNS = {
    "file": ["id", "path"],
    "context": ["id", "context"],
    "line_bits": ["file_id", "context_id", "numbits"],
    "arc": ["file_id", "context_id", "fromno", "tono"],
    "meta": ["key", "value"],
    "coverage_schema": ["version"],
}
_PATHS = [
    "/home/u/.aws/credentials",
    "../outside/canary.py",
    "../../etc/passwd",
    "/var/task/../../outside/canary.py",
    "canary.py\x00.txt",
    "",
    "a" * 5000,
]
_CRAFTED = [
    "create trigger t after insert on file begin delete from arc; end",
    "create view v as select 1",
    "create table extra (x)",
    "insert into context (context) values ('x@1')",
    "drop table arc",
    "update meta set value = 'maybe' where key = 'has_arcs'",
]


def _truncate(draw: st.DrawFn, base: bytes) -> bytes:
    return base[: draw(st.integers(0, len(base) - 1))]


def _flip(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def _random(draw: st.DrawFn, base: bytes) -> bytes:
    head = draw(st.sampled_from([b"", b"SQLite format 3\x00"]))
    return head + draw(st.binary(min_size=0, max_size=2048))


def _cell(draw: st.DrawFn, base: bytes) -> bytes:
    table = draw(st.sampled_from(sorted(_COLUMNS)))
    column = draw(st.sampled_from(_COLUMNS[table]))
    value = draw(st.sampled_from(_VALUES))
    try:
        return _sql(base, f"update {table} set {column} = {value}")  # noqa: S608
    except sqlite3.IntegrityError:
        return base


def _path(draw: st.DrawFn, base: bytes) -> bytes:
    return _sql(base, "update file set path = ?", draw(st.sampled_from(_PATHS)))


def _crafted(draw: st.DrawFn, base: bytes) -> bytes:
    for statement in draw(st.lists(st.sampled_from(_CRAFTED), min_size=1, max_size=3)):
        base = _sql(base, statement)
    return base


def _pages(draw: st.DrawFn, base: bytes) -> bytes:
    # The database size in the header (bytes 28-31) claims billions of pages.
    data = bytearray(base)
    data[28:32] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"]))
    return bytes(data)


_KINDS = [_truncate, _flip, _random, _cell, _path, _crafted, _pages]


class Hostile(bytes):
    """A hostile file's bytes, shown by size only (the bytes are the file's)."""

    def __repr__(self) -> str:
        return f"<{len(self)} hostile bytes>"


@st.composite
def hostile_files(draw: st.DrawFn) -> Hostile:
    """One hostile data file, of any of the kinds an attacker or a fault could make."""
    base = draw(st.sampled_from(BASES))
    return Hostile(draw(st.sampled_from(_KINDS))(draw, base))


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (TimeoutError) if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the combine ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _tree(root: Path, skip: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and skip not in path.parents
    }


def _sandbox(root: Path, hostile: bytes) -> None:
    write_data(root / "in" / "good.coverage", lines=GOOD)
    write_data(root / "in" / "arcs.coverage", arcs=GOOD_ARCS)
    (root / "in" / "hostile.coverage").write_bytes(hostile)
    source = root / "src"
    source.mkdir()
    (source / "good.py").write_text("a = 1\nb = 2\n\nc = 4\n")
    (source / "branchy.py").write_text("if True:\n    x = 1\n")
    (source / "fuzz.py").write_text("\n".join(f"v{i} = {i}" for i in range(1, 12)) + "\n")
    outside = root / "outside"
    outside.mkdir()
    (outside / "canary.py").write_text(f"{CANARY} = 1\n")


def _run(root: Path) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["combine", str(root / "in"), "-o", str(root / "out"), "--source-root"]
    argv += [str(root / "src"), "--format", "data,json,html", "--processes", "1", "--json"]
    started = time.perf_counter()
    with time_limit(BOUND), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


def _lines_of(data_file: Path, context: str) -> dict[str, set[int]]:
    """Lines per file name of one context of the output, through coverage.py's API."""
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    data.set_query_contexts([f"^{context}$"])
    return {
        Path(name).name: set(lines) for name in data.measured_files() if (lines := data.lines(name))
    }


def check_one(hostile: bytes) -> None:
    """Run one example in a fresh sandbox and check every property."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _sandbox(root, hostile)
        before = _tree(root, root / "out")
        code, out, err, _ = _run(root)
        assert "Traceback" not in out + err
        if code == 1:
            # A measured path inside the source root whose file is not there:
            # the reports that need it cannot be made (by design), the rest is.
            assert "the source of 1 measured file(s) is not found" in err, err
            out = (root / "out" / "coverage-summary.json").read_text()
        assert code in (0, 1, 4), err
        assert _tree(root, root / "out") == before, "something was written outside --output"
        for path in (root / "out").rglob("*"):
            if path.is_file():
                assert CANARY.encode() not in path.read_bytes(), f"{path} holds the canary"
        summary = json.loads(out)
        rejected = {item["input"] for item in summary["inputs"]["rejected"]}
        assert rejected <= {str(root / "in" / "hostile.coverage")}
        if code == 4:
            named = rejected or summary["refused_paths"] or summary["inputs"]["skipped"]
            assert named, "a partial run that names nothing"
            for item in summary["inputs"]["rejected"]:
                # The terminal shows a reason's control characters as escapes.
                assert terminal_text(f"{item['input']}: {item['reason']}") in err
        data_file = root / "out" / ".coverage"
        assert _lines_of(data_file, "good@1") == {"good.py": {1, 2, 4}}
        assert _lines_of(data_file, "arcs@1") == {"branchy.py": {1, 2}}


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(hostile_files())
def test_a_hostile_file_never_crashes_hangs_writes_or_reads_outside(hostile: bytes) -> None:
    check_one(hostile)


MUTATIONS: list[Callable[[bytes], bytes]] = [
    lambda base: b"",
    lambda base: base[:100],
    lambda base: base[: len(base) // 2],
    lambda base: base[:-1],
    lambda base: _sql(_sql(base, _CRAFTED[0]), _CRAFTED[1]),
    lambda base: _sql(base, "update file set path = '../outside/canary.py'"),
    lambda base: _sql(base, "update file set path = '/home/u/.aws/credentials'"),
    lambda base: _sql(base, "update file set path = ?", "canary.py\x00.txt"),
    lambda base: _sql(base, "update file set path = ''"),
    lambda base: _sql(base, "update line_bits set numbits = 'ff'"),
    lambda base: _sql(base, "update arc set fromno = 'x'"),
    lambda base: _sql(base, "update coverage_schema set version = 99"),
    lambda base: bytes(b ^ 0xFF for b in base),
]


def test_the_mutation_corpus_is_handled_case_by_case() -> None:
    """A fixed corpus, run on every test run whatever hypothesis draws."""
    for base in BASES:
        for mutate in MUTATIONS:
            check_one(mutate(base))
