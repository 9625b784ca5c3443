"""S3 in and out, the one-call API, the Lambda handler, and real wrapper uploads end to end."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from coverage_combiner import combine_coverage_files
from coverage_combiner.cli import EXIT_OK, EXIT_PARTIAL, main
from coverage_combiner.lambda_handler import handler, merge_into_rolling
from coverage_combiner.summary import render_markdown
from tests.combiner.conftest import key, read_data, write_data
from tests.wrapper.reference import reference_measurement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ORDERS = """\
import json


def handler(event, context):
    if event.get("big"):
        return {"size": "big"}
    return {"size": json.dumps(event)}
"""


def put_data(s3: S3Client, bucket: str, tmp_path: Path, object_key: str, **data: Any) -> None:
    local = write_data(tmp_path / "staging" / object_key, **data)
    s3.put_object(Bucket=bucket, Key=object_key, Body=local.read_bytes())


def etags(s3: S3Client, bucket: str) -> dict[str, str]:
    listing = s3.list_objects_v2(Bucket=bucket)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def test_cli_reads_s3_and_writes_s3(s3: S3Client, bucket: str, tmp_path: Path) -> None:
    for pid in range(1, 6):
        put_data(s3, bucket, tmp_path, key(pid=pid), lines={"orders@$LATEST": {"app.py": {pid}}})
    s3.put_object(Bucket=bucket, Key="coverage/_health/x.probe", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="coverage/2026/11/25/orders/_health/c1-7.probe", Body=b"ok")
    s3.put_object(
        Bucket=bucket, Key="coverage/2026/11/25/orders/LATEST/zero-1-000001.coverage", Body=b""
    )
    before = etags(s3, bucket)
    code = main(
        [
            "combine",
            f"s3://{bucket}/coverage/",
            "-o",
            f"s3://{bucket}/reports/run1",
            "--format",
            "data,json",
            "--jobs",
            "3",
            "-q",
        ]
    )
    assert code == EXIT_PARTIAL
    out = tmp_path / "merged.coverage"
    out.write_bytes(s3.get_object(Bucket=bucket, Key="reports/run1/.coverage")["Body"].read())
    lines, _, _ = read_data(out)
    # Without --source-root, relative paths are taken relative to the working folder.
    assert lines == {os.path.abspath("app.py"): {1, 2, 3, 4, 5}}
    summary = json.loads(
        s3.get_object(Bucket=bucket, Key="reports/run1/coverage-summary.json")["Body"].read()
    )
    assert summary["inputs"]["rejected"] == [
        {
            "input": f"s3://{bucket}/coverage/2026/11/25/orders/LATEST/zero-1-000001.coverage",
            "reason": "empty file (0 bytes)",
        }
    ]
    # The two probes: counted, not named as other objects.
    assert (summary["inputs"]["skipped"], summary["inputs"]["skipped_not_data"]) == ([], 2)
    after = etags(s3, bucket)
    assert {k: v for k, v in after.items() if not k.startswith("reports/")} == before


def test_combine_coverage_files_keeps_the_seed_signature(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    put_data(
        s3, bucket, tmp_path, key(pid=1), arcs={"orders@$LATEST": {"app.py": {(-1, 1), (1, -1)}}}
    )
    result = combine_coverage_files(
        bucket_name=bucket, prefix="coverage/", output_key="coverage/combined/daily-report.json"
    )
    json.dumps(result)
    assert result["inputs"]["merged"] == 1
    assert result["outputs"]["summary"] == f"s3://{bucket}/coverage/combined/daily-report.json"
    stored = json.loads(
        s3.get_object(Bucket=bucket, Key="coverage/combined/daily-report.json")["Body"].read()
    )
    assert stored["functions"]["orders"]["executed_lines"] == 1
    # Running again does not read its own outputs back in.
    again = combine_coverage_files(bucket, "coverage/", "coverage/combined/daily-report.json")
    assert again["inputs"]["merged"] == 1
    from coverage_wrapper import combine_coverage_files as from_the_wrapper

    assert (
        from_the_wrapper(bucket, "coverage/", "coverage/combined/again.json")["inputs"]["merged"]
        == 1
    )


def test_cli_output_inside_the_source_prefix_is_not_read_back(
    s3: S3Client, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_data(s3, bucket, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    # A data file whose key merely starts like the output prefix is still an input.
    put_data(s3, bucket, tmp_path, "coverage/run10/x.coverage", lines={"billing@1": {"b.py": {2}}})
    args = [
        "combine",
        f"s3://{bucket}/coverage/",
        "-o",
        f"s3://{bucket}/coverage/run1",
        "--format",
        "data,json",
        "--json",
    ]
    for _ in range(2):
        assert main(args) == EXIT_OK
        summary = json.loads(capsys.readouterr().out)
        assert summary["inputs"]["merged"] == 2
    assert "coverage/run1/.coverage" in etags(s3, bucket)


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, bucket: str) -> str:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "coverage/")
    monkeypatch.setenv("COVERAGE_COMBINED_PREFIX", "coverage-combined/")
    return bucket


def s3_event(*keys: str) -> dict[str, Any]:
    return {
        "Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k}}} for k in keys]
    }


def test_scheduled_event_combines_everything(s3: S3Client, lambda_env: str, tmp_path: Path) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    put_data(s3, lambda_env, tmp_path, key(pid=2), lines={"orders@$LATEST": {"app.py": {2}}})
    result = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    assert result["inputs"]["merged"] == 2
    assert result["outputs"]["data"] == f"s3://{lambda_env}/coverage-combined/latest/.coverage"
    assert "coverage-combined/latest/coverage-summary.md" in etags(s3, lambda_env)


def test_a_scheduled_run_without_data_leaves_the_last_report(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    reports = {k: v for k, v in etags(s3, lambda_env).items() if k.startswith("coverage-combined/")}
    s3.delete_object(Bucket=lambda_env, Key=key(pid=1))  # expired by a lifecycle rule, say
    result = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    assert result["outputs"] == {}
    assert result["no_data"].startswith(f"no coverage data under s3://{lambda_env}/coverage/ (")
    assert etags(s3, lambda_env) == reports


def test_s3_events_merge_incrementally_and_ignore_own_outputs(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    put_data(s3, lambda_env, tmp_path, key(pid=2), lines={"orders@$LATEST": {"app.py": {2}}})
    first = handler(s3_event(key(pid=1)), None)
    assert first["attempts"] == 1
    second = handler(
        s3_event(key(pid=2), "coverage-combined/rolling/combined.coverage", "coverage/readme.txt"),
        None,
    )
    assert second["ignored"] == [
        "coverage-combined/rolling/combined.coverage",
        "coverage/readme.txt",
    ]
    rolling = tmp_path / "rolling.coverage"
    rolling.write_bytes(
        s3.get_object(Bucket=lambda_env, Key="coverage-combined/rolling/combined.coverage")[
            "Body"
        ].read()
    )
    assert read_data(rolling)[0] == {"app.py": {1, 2}}
    assert handler(s3_event("coverage-combined/rolling/combined.coverage"), None)["merged"] == []


def test_a_concurrent_update_is_never_lost(s3: S3Client, lambda_env: str, tmp_path: Path) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    put_data(s3, lambda_env, tmp_path, key(pid=2), lines={"orders@$LATEST": {"app.py": {2}}})
    put_data(s3, lambda_env, tmp_path, key(pid=3), lines={"orders@$LATEST": {"app.py": {3}}})
    handler(s3_event(key(pid=1)), None)
    raced: list[bool] = []

    def another_event_lands_first() -> None:
        if not raced:
            raced.append(True)
            merge_into_rolling(
                lambda_env,
                [key(pid=3)],
                raw_prefix="coverage/",
                combined_prefix="coverage-combined/",
            )

    result = merge_into_rolling(
        lambda_env,
        [key(pid=2)],
        raw_prefix="coverage/",
        combined_prefix="coverage-combined/",
        before_write=another_event_lands_first,
    )
    assert result["attempts"] == 2  # the first write lost the race and was retried
    rolling = tmp_path / "rolling.coverage"
    rolling.write_bytes(
        s3.get_object(Bucket=lambda_env, Key="coverage-combined/rolling/combined.coverage")[
            "Body"
        ].read()
    )
    assert read_data(rolling)[0] == {"app.py": {1, 2, 3}}


def read_rolling(s3: S3Client, bucket: str, tmp_path: Path) -> dict[str, set[int]]:
    rolling = tmp_path / "rolling-now.coverage"
    rolling.write_bytes(
        s3.get_object(Bucket=bucket, Key="coverage-combined/rolling/combined.coverage")[
            "Body"
        ].read()
    )
    return read_data(rolling)[0]


@pytest.mark.parametrize("rolling_exists", [False, True], ids=["if-none-match", "if-match"])
def test_two_merges_racing_in_threads_both_land(
    s3: S3Client, lambda_env: str, tmp_path: Path, rolling_exists: bool
) -> None:
    for pid in (1, 2, 3):
        put_data(
            s3, lambda_env, tmp_path, key(pid=pid), lines={"orders@$LATEST": {"app.py": {pid}}}
        )
    if rolling_exists:
        handler(s3_event(key(pid=1)), None)
    # Both read the same state (no file, or the same ETag) before either writes.
    both_read = threading.Barrier(2, timeout=30)
    first_attempts: set[int] = set()

    def wait_for_the_other() -> None:
        if threading.get_ident() not in first_attempts:
            first_attempts.add(threading.get_ident())
            both_read.wait()

    def merge(pid: int) -> dict[str, Any]:
        return merge_into_rolling(
            lambda_env,
            [key(pid=pid)],
            raw_prefix="coverage/",
            combined_prefix="coverage-combined/",
            before_write=wait_for_the_other,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(merge, (2, 3)))
    # moto answers the losing conditional write with 412; it read again and retried.
    assert sorted(r["attempts"] for r in results) == [1, 2]
    expected = {2, 3} | ({1} if rolling_exists else set())
    assert read_rolling(s3, lambda_env, tmp_path) == {"app.py": expected}


def test_eventbridge_object_created_events_and_other_buckets(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=4), lines={"orders@$LATEST": {"app.py": {4}}})
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": lambda_env}, "object": {"key": key(pid=4)}},
    }
    assert handler(event, None)["merged"] == [f"s3://{lambda_env}/{key(pid=4)}"]
    assert read_rolling(s3, lambda_env, tmp_path) == {"app.py": {4}}
    record = {"bucket": {"name": "another"}, "object": {"key": key()}}
    elsewhere = {"Records": [{"eventName": "ObjectCreated:Put", "s3": record}]}
    assert handler(elsewhere, None) == {"merged": [], "ignored": [], "rejected": [], "attempts": 0}


def test_an_unreadable_rolling_file_is_left_alone_and_named(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    put_data(s3, lambda_env, tmp_path, key(pid=1), lines={"orders@$LATEST": {"app.py": {1}}})
    rolling_key = "coverage-combined/rolling/combined.coverage"
    s3.put_object(Bucket=lambda_env, Key=rolling_key, Body=b"garbage")
    before = etags(s3, lambda_env)
    with pytest.raises(RuntimeError, match=r"rolling/combined.coverage is unreadable \(not a"):
        handler(s3_event(key(pid=1)), None)
    assert etags(s3, lambda_env) == before


@pytest.fixture
def wrapped_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Client, bucket: str
) -> Iterator[Path]:
    """A function measured by the real wrapper, uploading to the moto server."""
    from coverage_wrapper.session import reset_session

    root = tmp_path / "task"
    root.mkdir()
    (root / "orders.py").write_text(ORDERS)
    for name, value in {
        "LAMBDA_TASK_ROOT": str(root),
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "5",
        "COVERAGE_S3_BUCKET": bucket,
        "COVERAGE_SPOOL_DIR": str(tmp_path / "spool"),
        "COVERAGE_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    reset_session()
    yield root
    reset_session()
    sys.modules.pop("orders", None)
    sys.modules.pop("coverage_wrapper.handler", None)


def test_end_to_end_from_real_wrapper_uploads(
    wrapped_function: Path,
    s3: S3Client,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COVERAGE_ORIGINAL_HANDLER", "orders.handler")
    import importlib

    entry = importlib.import_module("coverage_wrapper.handler")
    for event in ({"big": True}, {"n": 1}, {"n": 2}):
        entry.handler(event, None)
    out = tmp_path / "report"
    code = main(
        [
            "combine",
            f"s3://{bucket}/coverage/",
            "-o",
            str(out),
            "--source-root",
            str(wrapped_function),
            "--format",
            "data,json",
            "-q",
        ]
    )
    assert code == EXIT_OK
    lines, arcs, contexts = read_data(out / ".coverage")
    app = str(wrapped_function / "orders.py")
    assert lines == {app: {1, 4, 5, 6, 7}}
    # Exactly what coverage.py itself measures for the same import and calls.
    ref_lines, ref_arcs = reference_measurement(
        wrapped_function, "orders.handler", [{"big": True}, {"n": 1}, {"n": 2}], measure_import=True
    )
    assert {app: ref_lines["orders.py"]} == lines
    assert {app: ref_arcs["orders.py"]} == arcs
    assert contexts == {"orders@5|init", "orders@5|invocation"}
    summary = json.loads((out / "coverage-summary.json").read_text())
    # Three invocations, two cumulative snapshots (the third ran nothing new), one read.
    assert summary["inputs"]["superseded_snapshots"] == 1
    assert summary["totals"]["percent_covered"] == 100.0
    # The import and the def ran at init only; the handler's lines in invocations.
    assert summary["functions"]["orders"]["only_at_init"] == {app: [1, 4]}
    assert "| orders | `orders.py` | 1, 4 |" in render_markdown(summary)
