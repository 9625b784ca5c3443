"""Init and invocation lines recorded apart, exactly, on every coverage.py core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coverage
import pytest

from coverage_wrapper.attribution import INIT, INVOCATION, dynamic_context, parse_context
from tests.wrapper.conftest import CORES, lambda_context, uploads, use_core, write_module
from tests.wrapper.test_zero_code import load_zero_code

# ``helper`` runs at init (line 5) and again in an invocation: the lines a
# core that records a line only once would leave out of the invocation.
WARMUP = """\
def helper(n):
    return n + 1


SETUP = helper(1)


def handler(event, context):
    if event.get("again"):
        return helper(2)
    return SETUP
"""
WARMUP_INIT_LINES = {1, 2, 5, 8}
WARMUP_AGAIN_LINES = {2, 9, 10}
WARMUP_PLAIN_LINES = {9, 11}


def lines_per_context(path: Path, measured: str) -> dict[str, set[int]]:
    """The lines of file ``measured`` in the data file at ``path``, per context."""
    data = coverage.CoverageData(basename=str(path))
    data.read()
    found: dict[str, set[int]] = {}
    for line, contexts in data.contexts_by_lineno(measured).items():
        for context in contexts:
            found.setdefault(context, set()).add(line)
    return found


def newest_data(s3: Any, bucket: str, tmp_path: Path) -> Path:
    """The newest upload of the one process, as a local data file (snapshots are cumulative)."""
    found = uploads(s3, bucket, tmp_path)
    assert found
    return tmp_path / f"download-{len(found) - 1}.coverage"


@pytest.mark.parametrize("core", CORES)
def test_init_and_invocation_lines_are_recorded_apart(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    core: str,
) -> None:
    use_core(monkeypatch, core)
    write_module(task_root, "warmup.py", WARMUP)
    entry = load_zero_code(monkeypatch, "warmup.handler")
    assert entry.handler({"again": True}, lambda_context("r1")) == 3
    assert entry.handler({}, lambda_context("r2")) == 2
    # The second invocation replays helper's line 2 and the handler's line 9:
    # they stay under the invocation context, and nothing moves to init.
    assert entry.handler({"again": True}, lambda_context("r3")) == 3
    from coverage_wrapper import health_check_handler

    names = {"ctrace": "CTracer", "sysmon": "SysMonitor"}
    assert health_check_handler()["measurement"]["core"] == names[core]

    found = lines_per_context(newest_data(s3, bucket, tmp_path), "warmup.py")
    static = "orders@$LATEST"
    assert found == {
        f"{static}|{INIT}": WARMUP_INIT_LINES,
        f"{static}|{INVOCATION}": WARMUP_AGAIN_LINES | WARMUP_PLAIN_LINES,
    }
    only_at_init = found[f"{static}|{INIT}"] - found[f"{static}|{INVOCATION}"]
    assert only_at_init == {1, 5, 8}


def test_a_decorated_handler_has_only_invocation_lines(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    from coverage_wrapper import coverage_handler

    write_module(task_root, "warmup.py", WARMUP)
    import warmup  # type: ignore[import-not-found]

    handler = coverage_handler(warmup.handler)
    assert handler({"again": True}, lambda_context()) == 3
    found = lines_per_context(newest_data(s3, bucket, tmp_path), "warmup.py")
    assert found == {f"orders@$LATEST|{INVOCATION}": WARMUP_AGAIN_LINES}


def test_context_labels_read_back() -> None:
    assert dynamic_context(INIT, None) == "init"
    assert dynamic_context(INVOCATION, "ci/1234 $x") == "invocation;run=ci_1234_x"
    read = parse_context("orders@7|invocation;run=ci_1234")
    assert (read.static, read.phase, read.run_id) == ("orders@7", INVOCATION, "ci_1234")
    assert parse_context("orders@7") == parse_context("orders@7|")
    assert parse_context("orders@7").phase is None
