"""``--run-id R`` finds every line run R measured, even when R's own snapshot never arrived.

A process serves run A, then run B (``COVERAGE_RUN_ID_FIELD``). Its snapshots
are cumulative: the one under B's key holds A's ``run=A`` contexts too. If
A's own snapshot is lost (a spool that dropped entries during an outage),
A's lines are still in the bucket, and ``--run-id A`` must find them there.
The wrapper here is the real one: its decorator, session, spool and uploads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import coverage
import pytest

from coverage_wrapper import coverage_handler
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import lambda_context, write_module

# The combiner needs Python 3.11+: on 3.10 (the wrapper's compat run) this is skipped.
combiner = pytest.importorskip("coverage_combiner")
cli = pytest.importorskip("coverage_combiner.cli")

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RUNS = """\
def handler(event, context):
    path = event["path"]  # run A  # run B
    if path == "a":  # run A  # run B
        return "a"  # run A
    return "other"  # run B
"""


def marked(run: str) -> set[int]:
    """The lines of ``RUNS`` that ``run`` executes, as its comments say."""
    return {n for n, text in enumerate(RUNS.splitlines(), 1) if f"# run {run}" in text}


@pytest.mark.parametrize(
    "template",
    [DEFAULT_KEY_TEMPLATE, "{prefix}{function}/{run_id}/{container}-{pid}-{seq}.coverage"],
    ids=["no-run-in-key", "run-in-key"],
)
def test_a_runs_lines_are_found_in_a_later_snapshot(
    task_root: Path,
    s3: S3Client,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
) -> None:
    monkeypatch.setenv("COVERAGE_S3_KEY_TEMPLATE", template)
    monkeypatch.setenv("COVERAGE_RUN_ID_FIELD", "headers.x-test-run")
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "invocation")
    monkeypatch.setenv("COVERAGE_BRANCH_COVERAGE", "false")
    write_module(task_root, "runs.py", RUNS)
    import runs  # type: ignore[import-not-found]

    measured = coverage_handler(runs.handler)
    assert measured({"headers": {"x-test-run": "A"}, "path": "a"}, lambda_context("r1")) == "a"
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(written) == 1  # A's own snapshot
    assert measured({"headers": {"x-test-run": "B"}, "path": "c"}, lambda_context("r2")) == "other"
    session = current_session()
    assert session is not None
    assert session.spool.backlog() == (0, 0)  # everything reached S3

    # A's own snapshot is lost; only B's, which holds A's lines too, remains.
    s3.delete_object(Bucket=bucket, Key=written[0])
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(remaining) == 1
    if "{run_id}" in template:
        parsed = KeyTemplate.parse_template(template).parse(remaining[0])
        assert parsed is not None
        assert parsed.run_id == "B"

    source = [f"s3://{bucket}/coverage/"]
    for run in ("A", "B"):
        result = combiner.combine(
            source, combiner.CombineOptions(key_template=template, run_id=run), s3=s3
        )
        assert result.merged.lines_by_file() == {"runs.py": marked(run)}
        assert {c.rpartition("=")[2] for c in result.merged.contexts()} == {run}
        # Cheap: the process's newest snapshot is the one file read.
        assert result.merged.inputs == [f"s3://{bucket}/{remaining[0]}"]

    # The CLI's own client, for the moto server this test's environment names.
    monkeypatch.setattr(pytest.importorskip("coverage_combiner.inputs"), "_clients", {})
    out = tmp_path / "out"
    args = ["combine", *source, "-o", str(out), "--format", "data", "-q", "--run-id", "A"]
    assert cli.main([*args, "--key-template", template]) == cli.EXIT_OK
    data = coverage.CoverageData(basename=str(out / ".coverage"))
    data.read()
    assert {f: set(data.lines(f) or ()) for f in data.measured_files()} == {
        os.path.join(os.getcwd(), "runs.py"): marked("A")
    }


def test_a_run_never_measured_finds_nothing(
    task_root: Path, s3: S3Client, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_RUN_ID_FIELD", "headers.x-test-run")
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", "invocation")
    write_module(task_root, "runs.py", RUNS)
    import runs

    event: dict[str, Any] = {"headers": {"x-test-run": "A"}, "path": "a"}
    assert coverage_handler(runs.handler)(event, lambda_context("r1")) == "a"
    options = combiner.CombineOptions(run_id="Z", allow_empty=True)
    assert combiner.combine([f"s3://{bucket}/coverage/"], options, s3=s3).merged.files() == set()
