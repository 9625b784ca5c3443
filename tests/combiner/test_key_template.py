"""Keys in a custom layout (``--key-template``), run ids, and source prefixes as folders."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from coverage_combiner import CombineOptions, SourceError, combine
from coverage_combiner.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from coverage_combiner.lambda_handler import handler
from coverage_wrapper.keys import KeyTemplateError
from tests.combiner.conftest import key, read_data, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The function first (so each function's grant stays its own), then day and run.
TEMPLATE = "{prefix}{function}/{yyyy}{mm}{dd}/{run_id}/{container}.{pid}.{seq}.coverage"


@pytest.fixture
def custom_layout(tmp_path: Path) -> Path:
    """Two cumulative snapshots of one process, two more processes, two days, two runs."""
    root = tmp_path / "bucket"
    files = [
        ("orders", "2026/11/25", "r1", 1, 1, {"o.py": {1}}),
        ("orders", "2026/11/25", "r1", 1, 2, {"o.py": {1, 2}}),
        ("orders", "2026/11/25", "nightly 7", 2, 1, {"o.py": {5}}),
        ("billing", "2026/11/24", "r1", 3, 1, {"b.py": {9}}),
    ]
    for function, day, run_id, pid, seq, lines in files:
        name = key(function, day=day, pid=pid, seq=seq, run_id=run_id, template=TEMPLATE)
        write_data(root / name, lines={f"{function}@$LATEST": lines})
    return root


def test_the_template_gives_the_newest_snapshot_per_process(custom_layout: Path) -> None:
    result = combine([str(custom_layout)], CombineOptions(key_template=TEMPLATE))
    assert result.superseded == 1
    assert len(result.merged.inputs) == 3
    assert result.merged.lines_by_file() == {"o.py": {1, 2, 5}, "b.py": {9}}
    # Read with the default layout, no key parses: every snapshot is read (same union).
    default = combine([str(custom_layout)])
    assert default.superseded == 0
    assert len(default.merged.inputs) == 4
    assert default.merged.lines_by_file() == result.merged.lines_by_file()


def test_function_and_day_filters_read_the_templates_keys(custom_layout: Path) -> None:
    orders = combine([str(custom_layout)], CombineOptions(key_template=TEMPLATE, function="orders"))
    assert len(orders.merged.inputs) == 2
    assert orders.merged.lines_by_file() == {"o.py": {1, 2, 5}}
    # The files were written today: only the keys can say 2026-11-24.
    one_day = combine(
        [str(custom_layout)],
        CombineOptions(key_template=TEMPLATE, since=date(2026, 11, 24), until=date(2026, 11, 24)),
    )
    assert one_day.merged.lines_by_file() == {"b.py": {9}}


def test_a_run_id_selects_that_runs_data_files_only(custom_layout: Path, tmp_path: Path) -> None:
    first = combine([str(custom_layout)], CombineOptions(key_template=TEMPLATE, run_id="r1"))
    assert first.merged.lines_by_file() == {"o.py": {1, 2}, "b.py": {9}}
    # Matched as the wrapper wrote it into the key.
    nightly = combine(
        [str(custom_layout)], CombineOptions(key_template=TEMPLATE, run_id="nightly 7")
    )
    assert nightly.merged.lines_by_file() == {"o.py": {5}}
    # A data file whose key does not fit the template carries no run id.
    write_data(custom_layout / "stray.coverage", lines={"orders@$LATEST": {"o.py": {40}}})
    again = combine([str(custom_layout)], CombineOptions(key_template=TEMPLATE, run_id="r1"))
    assert again.merged.lines_by_file() == first.merged.lines_by_file()


def test_a_run_id_keeps_only_that_runs_contexts(tmp_path: Path) -> None:
    # One process served run r1, then run r2: its newer cumulative snapshot
    # holds both runs, each under its own context.
    root = tmp_path / "bucket"
    first = key("orders", pid=1, seq=1, run_id="r1", template=TEMPLATE)
    both = key("orders", pid=1, seq=2, run_id="r2", template=TEMPLATE)
    write_data(root / first, lines={"orders@$LATEST|invocation;run=r1": {"o.py": {1, 2}}})
    write_data(
        root / both,
        lines={
            "orders@$LATEST|invocation;run=r1": {"o.py": {1, 2}},
            "orders@$LATEST|invocation;run=r2": {"o.py": {2, 3}},
        },
    )
    r1 = combine([str(root)], CombineOptions(key_template=TEMPLATE, run_id="r1"))
    assert r1.merged.lines_by_file() == {"o.py": {1, 2}}
    r2 = combine([str(root)], CombineOptions(key_template=TEMPLATE, run_id="r2"))
    assert r2.merged.lines_by_file() == {"o.py": {2, 3}}
    assert r2.merged.contexts() == {"orders@$LATEST|invocation;run=r2"}


def test_a_bad_template_is_refused() -> None:
    with pytest.raises(KeyTemplateError, match=r"it lacks \{container\} \{pid\} \{seq\}"):
        CombineOptions(key_template="{prefix}{function}.coverage")


def test_a_run_id_needs_no_run_id_in_the_key(tmp_path: Path) -> None:
    # The default layout has no {run_id}: the run= contexts alone find the run.
    root = tmp_path / "bucket"
    write_data(
        root / key("orders", pid=1, seq=1),
        lines={
            "orders@$LATEST|invocation;run=r1": {"o.py": {1, 2}},
            "orders@$LATEST|invocation;run=r2": {"o.py": {3}},
        },
    )
    r1 = combine([str(root)], CombineOptions(run_id="r1"))
    assert r1.merged.lines_by_file() == {"o.py": {1, 2}}


def test_cli_key_template_and_run_id(custom_layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(custom_layout),
            "-o",
            str(out),
            "--format",
            "data",
            "-q",
            "--key-template",
            TEMPLATE,
            "--run-id",
            "r1",
            "--function",
            "orders",
        ]
    )
    assert code == EXIT_OK
    lines, _, _ = read_data(out / ".coverage")
    assert lines == {os.path.abspath("o.py"): {1, 2}}


def test_cli_usage_errors_for_the_template_and_the_run_id(
    custom_layout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["combine", str(custom_layout), "-o", str(tmp_path / "out")]
    assert main([*base, "--key-template", "{prefix}{region}/{function}/x.coverage"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert (
        "lambda-coverage combine: error: argument --key-template: key template "
        "'{prefix}{region}/{function}/x.coverage' is not valid: it lacks {container} {pid} {seq}"
    ) in err
    assert not (tmp_path / "out").exists()


def _put(s3: S3Client, bucket: str, tmp_path: Path, object_key: str, line: int) -> None:
    local = write_data(
        tmp_path / "staging" / object_key, lines={"orders@$LATEST": {"a.py": {line}}}
    )
    s3.put_object(Bucket=bucket, Key=object_key, Body=local.read_bytes())


def test_an_s3_source_prefix_is_a_folder_unless_it_ends_in_a_star(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    _put(s3, bucket, tmp_path, key(pid=1), 1)
    _put(s3, bucket, tmp_path, "coverage-combined/latest/.coverage", 2)
    _put(s3, bucket, tmp_path, "coverage2/x.coverage", 3)
    _put(s3, bucket, tmp_path, "other/y.coverage", 4)

    def lines(source: str) -> dict[str, set[int]]:
        return combine([source], CombineOptions(version="all"), s3=s3).merged.lines_by_file()

    assert lines(f"s3://{bucket}/coverage") == {"a.py": {1}}
    assert lines(f"s3://{bucket}/coverage/") == {"a.py": {1}}
    assert lines(f"s3://{bucket}//coverage") == {"a.py": {1}}
    assert lines(f"s3://{bucket}/cov*") == {"a.py": {1, 2, 3}}
    assert lines(f"s3://{bucket}/coverage/*") == {"a.py": {1}}
    assert lines(f"s3://{bucket}/*") == {"a.py": {1, 2, 3, 4}}
    assert lines(f"s3://{bucket}") == {"a.py": {1, 2, 3, 4}}
    with pytest.raises(SourceError, match=r"only a trailing '\*' is understood"):
        lines(f"s3://{bucket}/c*v/")
    with pytest.raises(SourceError, match=r"key prefix 'a/\.\.' has a '\.\.' segment"):
        lines(f"s3://{bucket}/a/../x*")


def test_the_cli_reads_the_folder_and_not_its_sibling(
    s3: S3Client, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, bucket, tmp_path, key(pid=1), 1)
    _put(s3, bucket, tmp_path, "coverage-combined/x.coverage", 2)
    args = [
        "combine",
        f"s3://{bucket}/coverage",
        "-o",
        str(tmp_path / "out"),
        "--json",
        "-q",
        "--format",
        "json",
    ]
    assert main(args) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["inputs"]["merged"] == 1
    assert main([*args[:1], f"s3://{bucket}/x*y", *args[2:]]) == EXIT_ERROR
    assert "only a trailing '*' is understood" in capsys.readouterr().err


def test_the_lambda_reads_the_template_and_prefix_from_its_environment(
    s3: S3Client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "coverage")
    monkeypatch.setenv("COVERAGE_COMBINED_PREFIX", "/coverage-combined")
    monkeypatch.setenv("COVERAGE_S3_KEY_TEMPLATE", TEMPLATE)
    for seq in (1, 2, 3):
        _put(s3, bucket, tmp_path, key(pid=1, seq=seq, template=TEMPLATE), seq)
    _put(s3, bucket, tmp_path, key(pid=2, template=TEMPLATE), 10)
    _put(s3, bucket, tmp_path, "coverage2/stray.coverage", 20)
    result = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    assert result["inputs"]["merged"] == 2
    assert result["inputs"]["superseded_snapshots"] == 2
    assert result["outputs"]["data"] == f"s3://{bucket}/coverage-combined/latest/.coverage"
    merged = tmp_path / "merged.coverage"
    merged.write_bytes(
        s3.get_object(Bucket=bucket, Key="coverage-combined/latest/.coverage")["Body"].read()
    )
    # The newest snapshot of process 1 (these stand-ins are not cumulative) and process 2.
    assert read_data(merged)[0] == {os.path.abspath("a.py"): {3, 10}}
    # Run again: its own outputs (the sibling folder) are not read back.
    assert handler({"source": "aws.events"}, None)["inputs"]["merged"] == 2
