"""Byte-identical inputs (containers that ran the same code paths) are merged once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coverage_combiner import combine
from coverage_combiner.cli import EXIT_PARTIAL, main
from tests.combiner.conftest import key, write_data


def test_identical_inputs_count_as_merged_and_are_read_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    first = write_data(
        source / key(version="1", pid=1), arcs={"orders@1": {"app.py": {(-1, 1), (1, 2)}}}
    )
    for pid in (2, 3):
        shutil.copyfile(first, source / key(version="1", pid=pid))
    write_data(source / key(version="1", pid=4), arcs={"orders@1": {"app.py": {(1, 3)}}})
    (source / "bad-1.coverage").write_bytes(b"junk")
    (source / "bad-2.coverage").write_bytes(b"junk")

    result = combine([str(source)])

    assert result.duplicates == 2  # the copies of the first file; a copy of junk is rejected
    assert sorted(result.merged.inputs) == sorted(
        str(source / key(version="1", pid=p)) for p in (1, 2, 3, 4)
    )
    assert result.merged.arcs_by_file() == {"app.py": {(-1, 1), (1, 2), (1, 3)}}
    junk = "not a coverage.py data file: not an SQLite database"
    assert [(Path(n).name, r) for n, r in result.rejected if "bad" in n] == [
        ("bad-1.coverage", junk),
        ("bad-2.coverage", junk),
    ]

    code = main(["combine", str(source), "-o", str(tmp_path / "out"), "--format", "data", "--json"])
    assert code == EXIT_PARTIAL
    inputs = json.loads(capsys.readouterr().out)["inputs"]
    assert inputs["merged"] == 4
    assert inputs["identical_to_another"] == 2
