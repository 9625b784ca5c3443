"""Faults on the way to S3: answers never change, and nothing is lost unless a sandbox is killed.

Each fault of :class:`test_stack.faults.FaultProxy` is tried on one sandbox
(exact line sets), then all of them under load with containers retired
mid-run, against the ground truth of every scenario
(:mod:`test_stack.reliability`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coverage_wrapper.extension import INVOKE_UPLOAD_BUDGET
from test_stack import reliability
from test_stack.faults import FAULTS, Fault, FaultProxy
from test_stack.layer import Layer
from test_stack.pytest_fixtures import PoolFactory
from test_stack.s3_server import s3_environment
from tests.apps.test_coverage_extension import (
    BUCKET,
    INIT_LINES,
    PATH_LINES,
    lines_in_s3,
    measured,
    prefix,
)

__all__ = ["BUCKET", "prefix"]

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of the module's S3 server, answers held 3 s when slow."""
    with FaultProxy(s3_endpoint) as running:
        yield running


@pytest.mark.parametrize("fault", FAULTS)
def test_lines_measured_during_a_fault_reach_s3_once_it_clears(
    local_lambda: PoolFactory,
    s3_endpoint: str,
    layer: Layer,
    prefix: str,
    proxy: FaultProxy,
    fault: Fault,
    tmp_path: Path,
) -> None:
    function = measured(
        layer, prefix, COVERAGE_FLUSH_POLICY="invocation", COVERAGE_UPLOAD_TIMEOUT="1"
    )
    pool = local_lambda([function], environment=s3_environment(proxy.url), idle_timeout=None)
    plain = pool.invoke("paths", {"path": "a"})
    with proxy.window(fault):
        during = pool.invoke("paths", {"path": "b"})
    assert proxy.counts[fault] >= 1, "the fault never met an upload"

    pool.retire()

    assert [plain.error_type, during.error_type] == [None, None]
    assert [plain.json()["answer"], during.json()["answer"]] == ["took a", "took b"]
    assert (
        lines_in_s3(s3_endpoint, prefix, tmp_path) == INIT_LINES | PATH_LINES["a"] | PATH_LINES["b"]
    )


def test_a_5xx_outage_holds_no_invoke_phase_past_the_upload_budget(
    local_lambda: PoolFactory,
    s3_endpoint: str,
    layer: Layer,
    prefix: str,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    # The upload timeout is the default: the per-invoke budget, not it, bounds the phase.
    function = measured(
        layer, prefix, COVERAGE_FLUSH_POLICY="invocation", COVERAGE_UPLOAD_TIMEOUT="30"
    )
    pool = local_lambda([function], environment=s3_environment(proxy.url), idle_timeout=None)
    pool.invoke("paths", {"path": "a"})  # imports boto3 in the extension, outside the window
    with proxy.window("unavailable"):
        during = [pool.invoke("paths", {"path": path}) for path in ["b", "c", "none", "b", "c"]]
    assert proxy.counts["unavailable"] >= 1, "the fault never met an upload"
    after = pool.invoke("paths", {"path": "a"})
    pool.retire()

    # The "none" path raises, as it does without the layer.
    assert [r.error_type for r in [*during, after]] == [None, None, "ValueError", None, None, None]
    phases = [r.phase_ms for r in during]
    assert None not in phases, phases
    budget_ms = INVOKE_UPLOAD_BUDGET * 1000
    # Each invoke phase ends within the budget (before: the whole upload
    # timeout, 30 s, after every invocation of the outage) ...
    assert max(p or 0.0 for p in phases) < budget_ms + 1000, phases
    # ... and, uploads pausing after the first failure, most end at once.
    assert sum((p or 0.0) > budget_ms / 2 for p in phases) <= 2, phases
    # Nothing was lost: what was measured during the outage reached S3 after it.
    assert (
        lines_in_s3(s3_endpoint, prefix, tmp_path)
        == INIT_LINES | PATH_LINES["a"] | PATH_LINES["b"] | PATH_LINES["c"] | PATH_LINES["none"]
    )


def test_under_load_and_every_fault_no_answer_changes_and_no_line_is_lost() -> None:
    # One test, so that a parallel session runs the load once.
    run = reliability.run(reliability.Settings())
    figures = reliability.figures(run)

    assert len(run.calls) >= 1000, figures
    # Every fault met uploads, and the load went on through each window.
    assert set(FAULTS) <= set(run.proxy_counts), figures
    assert {c.fault for c in run.calls} == {None, *FAULTS}, figures
    assert run.wrong_results == [], figures
    assert run.crashes == [], figures
    assert run.missing_calls() == [], figures
    assert run.missing_init() == {}, figures
    assert run.rejected == [], figures
    # Containers were retired while the load ran, and the report is the ground truth:
    # exactly the lines of the scenarios that ran and of their imports, nothing else.
    assert run.retired_mid_run >= 5, figures
    assert run.report_differences() == [], figures
    assert run.merged == run.truth.executed({reliability.key(c.scenario) for c in run.calls})
    assert reliability.holds(run)
    # The figures RELIABILITY.md shows are this run's.
    assert f"invocations served: {len(run.calls)}\n" in figures
    assert "handler results different from an unwrapped run: 0\n" in figures
    assert "invocations whose lines are missing from the combined report: 0\n" in figures
    assert "combined report equals the ground truth (exact line sets): yes\n" in figures

    # The checks are not vacuous: one line dropped, one answer changed, are counted.
    call = next(c for c in run.calls if run.truth.lines[reliability.key(c.scenario)])
    name, lines = next(iter(run.truth.lines[reliability.key(call.scenario)].items()))
    damaged = replace(run, merged={**run.merged, name: run.merged[name] - {min(lines)}})
    assert call in damaged.missing_calls()
    assert damaged.report_differences() != []
    assert not reliability.holds(damaged)
    other = next(c for c in run.calls if c.result.ok)
    wrong = replace(other, result=replace(other.result, payload=b'{"statusCode": 599}'))
    assert replace(run, calls=[wrong]).wrong_results == [wrong]


def test_the_command_line_names_a_bad_window(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        reliability.main(["--window", "0"])
    assert exit_info.value.code == 2
    assert "--window 0 must be more than 0 seconds" in capsys.readouterr().err
