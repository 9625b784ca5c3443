"""Reading data files one after another: no file changes how another is read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coverage_combiner import CombineOptions, combine
from coverage_combiner.merge import Merger
from coverage_combiner.reader import DataFileReader, Rejected, parse_arcs
from tests.combiner.conftest import write_data

NOT_NUMBERS = (
    "records line numbers that are not integers, or line bits that are not a blob: "
    "corrupt or not written by coverage.py"
)


def rebuilt(source: Path, target: Path, replace: dict[str, str], order: list[str]) -> Path:
    """``source``'s tables and rows in a new file: some tables defined anew, in ``order``,
    with the schema cookie of the original (as a file crafted to match it would have)."""
    original = sqlite3.connect(source)
    ddl = dict(original.execute("select name, sql from sqlite_master where type = 'table'"))
    cookie = original.execute("pragma schema_version").fetchone()[0]
    copy = sqlite3.connect(target)
    for name in order:
        copy.execute(replace.get(name, ddl[name]))
        columns = [row[1] for row in original.execute(f"pragma table_info({name})")]
        listed = ", ".join(columns)
        rows = original.execute(f"select {listed} from {name}").fetchall()  # noqa: S608
        kept = [row[1] for row in copy.execute(f"pragma table_info({name})")]
        if rows and set(columns) <= set(kept):
            marks = ", ".join("?" * len(columns))
            insert = f"insert into {name} ({listed}) values ({marks})"  # noqa: S608
            copy.executemany(insert, rows)
    copy.commit()
    copy.execute(f"pragma schema_version = {cookie}")
    copy.commit()
    copy.close()
    original.close()
    return target


TABLES = ["coverage_schema", "meta", "file", "context", "line_bits", "arc", "tracer"]


@pytest.mark.parametrize(
    ("replace", "order"),
    [
        # The arc table's columns in another order, everything else as coverage.py writes it.
        (
            {
                "arc": "create table arc (tono integer, fromno integer, context_id integer, "
                "file_id integer, unique (file_id, context_id, fromno, tono))"
            },
            TABLES,
        ),
        # Coverage.py's own tables, created in another order: other root pages.
        ({}, list(reversed(TABLES))),
    ],
    ids=["columns-reordered", "tables-reordered"],
)
def test_a_file_with_the_same_schema_cookie_but_another_layout_changes_nothing_else(
    tmp_path: Path, replace: dict[str, str], order: list[str]
) -> None:
    benign = write_data(tmp_path / "benign.coverage", arcs={"f@1": {"a.py": {(-1, 1), (1, 2)}}})
    other = write_data(tmp_path / "other.coverage", arcs={"f@1": {"a.py": {(5, 6)}}})
    crafted = rebuilt(other, tmp_path / "crafted.coverage", replace, order)
    merger = Merger()
    for path in (benign, crafted, benign, other):
        merger.add_bytes(path.name, path.read_bytes())
    # SQLite would have read the later files at the crafted file's root pages and
    # column positions: their arcs would have been lost or garbled.
    assert merger.result().arcs == {("f@1", "a.py"): {(-1, 1), (1, 2), (5, 6)}}
    reader = DataFileReader()
    assert [sorted(parse_arcs(group)) for *_, group in reader.read(crafted.read_bytes()).arcs] == [
        [(5, 6)]
    ]
    assert [sorted(parse_arcs(group)) for *_, group in reader.read(benign.read_bytes()).arcs] == [
        [(-1, 1), (1, 2)]
    ]


@pytest.mark.parametrize(
    ("statement", "values"),
    [
        ("update arc set tono = 'two'", [NOT_NUMBERS]),
        ("update arc set fromno = 1.5", [NOT_NUMBERS]),
        ("update arc set tono = null where fromno = 1", [NOT_NUMBERS]),
        ("update arc set fromno = -9223372036854775808 where fromno = 1", ["records line"]),
    ],
    ids=["text", "real", "null", "int64-min"],
)
def test_arcs_that_are_not_line_numbers_are_refused(
    tmp_path: Path, statement: str, values: list[str]
) -> None:
    bad = write_data(tmp_path / "in" / "bad.coverage", arcs={"f@1": {"a.py": {(-1, 1), (1, 2)}}})
    with sqlite3.connect(bad) as db:
        db.execute(statement)
    write_data(tmp_path / "in" / "good.coverage", arcs={"f@1": {"a.py": {(1, 3)}}})

    result = combine([str(tmp_path / "in")])

    assert [(name, reason[: len(values[0])]) for name, reason in result.rejected] == [
        (str(bad), values[0])
    ]
    assert result.merged.arcs == {("f@1", "a.py"): {(1, 3)}}


def test_line_bits_that_are_not_a_blob_are_refused(tmp_path: Path) -> None:
    bad = write_data(tmp_path / "in" / "bad.coverage", lines={"f@1": {"a.py": {1}}})
    with sqlite3.connect(bad) as db:
        db.execute("update line_bits set numbits = 'ff'")
    result = combine([str(tmp_path / "in")], CombineOptions(allow_empty=True))
    assert result.rejected == [(str(bad), NOT_NUMBERS)]


def test_tables_without_coverage_py_columns_are_rejected_by_name(tmp_path: Path) -> None:
    """coverage.py reads the same columns: what the SQL read cannot read, it cannot either."""
    from coverage import CoverageData
    from coverage.exceptions import DataError

    measured = write_data(tmp_path / "m.coverage", arcs={"f@1": {"a.py": {(-1, 1)}}})
    renamed = rebuilt(
        measured,
        tmp_path / "renamed.coverage",
        {"file": "create table file (id integer primary key, name text, unique (name))"},
        TABLES,
    )
    with sqlite3.connect(renamed) as db:
        db.execute("insert into file (id, name) values (1, 'a.py')")
    good = write_data(tmp_path / "good.coverage", arcs={"f@1": {"b.py": {(-1, 2)}}})
    reader = DataFileReader()
    with pytest.raises(Rejected) as rejected:
        reader.read(renamed.read_bytes())
    assert str(rejected.value).startswith(
        "not a coverage.py data file: its tables lack the columns of schema "
    )
    assert "no such column: path" in str(rejected.value)
    # The reader goes on to read the next file correctly.
    assert reader.read(good.read_bytes()).arcs == [("f@1", "b.py", "-1,2")]
    data = CoverageData(basename=str(renamed))
    with pytest.raises(DataError):
        data.read()
