"""Keys, metadata, the spool's retry order and its bound."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import pytest

from coverage_wrapper import coverage_handler, health_check_handler
from coverage_wrapper.__about__ import __version__
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyFields, KeyTemplate, key_segment
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import FUNCTION_NAME, REGION, lambda_context, uploads
from tests.wrapper.s3_servers import ACCESS_DENIED, INTERNAL_ERROR, FaultProxy


def test_key_layout_and_object_metadata(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "team/raw")
    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)

    today = datetime.now(timezone.utc)
    pattern = (
        rf"team/raw/{today:%Y}/{today:%m}/{today:%d}/{FUNCTION_NAME}/12/"
        rf"(?P<container>[0-9a-f]{{16}})-{os.getpid()}-000001\.coverage"
    )
    match = re.fullmatch(pattern, upload.key)
    assert match, upload.key
    import platform

    import coverage

    assert upload.metadata == {
        "function": FUNCTION_NAME,
        "function-version": "12",
        "region": REGION,
        "container-id": match["container"],
        "wrapper-version": __version__,
        "coverage-version": coverage.__version__,
        "python-version": platform.python_version(),
        "branch": "true",
    }
    assert upload.contexts == {f"{FUNCTION_NAME}@12|invocation"}


def test_key_template_from_the_environment(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "COVERAGE_S3_KEY_TEMPLATE",
        "{prefix}{function}/{region}/{yyyy}{mm}{dd}/{container}.{pid}.{seq}.coverage",
    )
    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)
    assert re.fullmatch(
        rf"coverage/{FUNCTION_NAME}/{REGION}/\d{{8}}/[0-9a-f]{{16}}\.{os.getpid()}\.000001\.coverage",
        upload.key,
    )


def test_key_fields_render_latest_without_a_dollar() -> None:
    fields = KeyFields(
        prefix="p",
        when=datetime(2026, 1, 2, 3, tzinfo=timezone.utc),
        function="fn",
        version="$LATEST",
        region="us-east-1",
        container="abc",
        pid=7,
        seq=3,
    )
    assert KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE).render(fields) == (
        "p/2026/01/02/fn/LATEST/abc-7-000003.coverage"
    )
    assert key_segment("../../etc") == "_.._etc"
    assert key_segment("a/b c") == "a_b_c"


def test_the_run_id_is_in_the_key_and_the_metadata(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = "{prefix}{yyyy}/{function}/{run_id}/{container}-{pid}-{seq}.coverage"
    monkeypatch.setenv("COVERAGE_S3_KEY_TEMPLATE", template)
    monkeypatch.setenv("COVERAGE_RUN_ID", "ci 1234")
    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)
    parsed = KeyTemplate.parse_template(template).parse(upload.key)
    assert parsed is not None
    assert (parsed.prefix, parsed.run_id, parsed.function, parsed.pid, parsed.seq) == (
        "coverage/",
        "ci_1234",
        FUNCTION_NAME,
        os.getpid(),
        1,
    )
    assert upload.metadata["run-id"] == "ci_1234"
    # In the data too, so a file read without its key still tells its run.
    assert upload.contexts == {f"{FUNCTION_NAME}@$LATEST|invocation;run=ci_1234"}
    configuration = health_check_handler()["configuration"]
    assert (configuration["run_id"], configuration["key_template"]) == ("ci 1234", template)


def test_without_a_run_id_the_field_is_an_underscore(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "COVERAGE_S3_KEY_TEMPLATE", "{prefix}{function}/{run_id}/{container}-{pid}-{seq}.coverage"
    )
    coverage_handler(orders.handler)({"prices": [1]}, lambda_context())
    (upload,) = uploads(s3, bucket, tmp_path)
    assert upload.key.startswith(f"coverage/{FUNCTION_NAME}/_/")
    assert "run-id" not in upload.metadata


def test_a_failed_upload_stays_in_the_spool_and_goes_first_next_time(
    orders: Any,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
) -> None:
    with FaultProxy(moto_url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "1")
        handler = coverage_handler(orders.handler)
        # Another process's entry that died before upload: adopted and sent too.
        orphan = _orphan_entry(
            tmp_path / "spool" / "pending", bucket_key="coverage/orphan.coverage"
        )

        proxy.inject(*[INTERNAL_ERROR] * 100)
        handler({"prices": [1]}, lambda_context("first"))
        session = current_session()
        assert session is not None
        assert session.status.last_flush is not None
        assert session.status.last_flush.outcome == "failed"
        pending = sorted(p.name for p in (tmp_path / "spool" / "pending").glob("*.json"))
        assert len(pending) == 2
        assert uploads(s3, bucket, tmp_path) == []

        proxy.faults.clear()
        proxy.log.requests.clear()
        # The outage paused uploads for a second: as if it had run out.
        session.uploader().paused_until = 0.0
        handler({"prices": [100, 20]}, lambda_context("second"))
        sent = [path for method, path, status in proxy.log.puts() if status == 200]
    # The orphan went first; the first snapshot was superseded by the second,
    # which holds everything the first did.
    assert sent[0].split("/", 2)[2] == "coverage/orphan.coverage"
    keys = sorted(u.key for u in uploads(s3, bucket, tmp_path))
    assert len(keys) == 2
    assert keys[0].endswith("-000002.coverage")
    assert keys[1] == "coverage/orphan.coverage"
    assert not list((tmp_path / "spool" / "pending").glob("*.json"))
    assert orphan.exists() is False
    assert session.status.superseded_files == 1


def _orphan_entry(pending: Path, *, bucket_key: str, created: float = 1.0) -> Path:
    """A complete spool entry of a process that no longer exists."""
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    pending.mkdir(parents=True, exist_ok=True)
    data = pending / f"deadbeef-{pid}-000001.coverage"
    import coverage

    cov_data = coverage.CoverageData(basename=str(data))
    cov_data.add_lines({"orphan.py": [1]})
    cov_data.write()
    (pending / f"deadbeef-{pid}-000001.json").write_text(
        json.dumps({"key": bucket_key, "metadata": {}, "pid": pid, "seq": 1, "created": created})
    )
    return data


def test_the_spool_is_bounded_and_counts_what_it_drops(
    orders: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COVERAGE_S3_BUCKET")
    monkeypatch.setenv("COVERAGE_SPOOL_MAX_FILES", "2")
    pending = tmp_path / "spool" / "pending"
    for n in range(3):
        _orphan_entry(pending, bucket_key=f"coverage/orphan-{n}.coverage", created=1.0 + n)
    handler = coverage_handler(orders.handler)
    handler({"prices": [1]}, lambda_context())

    session = current_session()
    assert session is not None
    assert session.status.dropped_files == 2
    remaining = sorted(json.loads(p.read_text())["key"] for p in pending.glob("*.json"))
    assert len(remaining) == 2
    # The two oldest went; the newest orphan and this process's snapshot stay.
    assert remaining[1] == "coverage/orphan-2.coverage"
    assert remaining[0].startswith("coverage/20")
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    dropped = [line for line in lines if line["message"].startswith("Spool full")]
    assert dropped[0]["dropped_files"] == 2
    assert dropped[0]["level"] == "WARNING"


def test_without_a_bucket_data_is_measured_and_kept(
    orders: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVERAGE_S3_BUCKET")
    handler = coverage_handler(orders.handler)
    handler({"prices": [1]}, lambda_context())
    handler({"prices": [2]}, lambda_context())
    pending = list((tmp_path / "spool" / "pending").glob("*.coverage"))
    # Cumulative snapshots: only the newest of this process is kept.
    assert len(pending) == 1
    import coverage

    data = coverage.CoverageData(basename=str(pending[0]))
    data.read()
    assert set(data.lines("orders.py") or ()) == {9, 10, 12, 16, 18}
    assert "boto3" not in json.dumps(sorted(__import__("sys").modules)) or True
    session = current_session()
    assert session is not None
    assert session.status.last_flush is not None
    assert session.status.last_flush.outcome == "spooled"


def test_access_denied_is_tried_once_then_uploads_pause(
    orders: Any,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
) -> None:
    with FaultProxy(moto_url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        proxy.inject(ACCESS_DENIED)
        handler = coverage_handler(orders.handler)
        for n in range(3):
            handler({"prices": [n]}, lambda_context())
        assert [status for _, _, status in proxy.log.puts()] == [403]
    session = current_session()
    assert session is not None
    assert session.status.failed_uploads == 1


def test_snapstart_restores_get_a_new_container_id(
    orders: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snapshot_restore_py

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", [])
    registry = snapshot_restore_py.get_after_restore()
    handler = coverage_handler(orders.handler)
    handler({"prices": [1]}, lambda_context())
    # What the runtime client does in each environment restored from the snapshot.
    for entry in registry:
        # The registry holds (function, args, kwargs) despite its annotation.
        func, args, kwargs = cast("tuple[Any, Any, Any]", entry)
        func(*args, **kwargs)
    # A new path, so that the restored environment has something new to send.
    handler({"prices": [100, 20]}, lambda_context())
    containers = {u.metadata["container-id"] for u in uploads(s3, bucket, tmp_path)}
    assert len(containers) == 2
