"""The load test's figures: latency percentiles and errors per function, the coverage table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from test_stack.load_driver import Outcome
from test_stack.report import CoverageReport


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class FunctionSummary:
    """Latency and errors of one function over the run."""

    function: str
    latencies: list[float] = field(default_factory=list)
    cold_starts: int = 0
    expected_errors: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def invokes(self) -> int:
        """How many invokes ran."""
        return len(self.latencies)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, FunctionSummary]:
    """Group the outcomes by function."""
    summaries: dict[str, FunctionSummary] = {}
    for outcome in outcomes:
        name = outcome.scenario.function
        summary = summaries.setdefault(name, FunctionSummary(name))
        summary.latencies.append(outcome.latency_ms)
        summary.cold_starts += int(outcome.result.init_duration_ms is not None)
        if outcome.problem is not None:
            summary.failures.append(f"{outcome.scenario.name}: {outcome.problem}")
        elif outcome.scenario.expected_error is not None:
            summary.expected_errors += 1
    return summaries


def format_summary(summaries: Mapping[str, FunctionSummary]) -> str:
    """The latency and error table, then each unexpected failure."""
    header = (
        f"{'function':<16} {'invokes':>7} {'cold':>5} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'expected errors':>15} {'failures':>8}"
    )
    lines = [header, "-" * len(header)]
    for summary in summaries.values():
        lat = summary.latencies
        lines.append(
            f"{summary.function:<16} {summary.invokes:>7} {summary.cold_starts:>5} "
            f"{percentile(lat, 0.50):>8.1f} {percentile(lat, 0.95):>8.1f} "
            f"{percentile(lat, 0.99):>8.1f} {summary.expected_errors:>15} "
            f"{len(summary.failures):>8}"
        )
    failures = [f"  {s.function}: {f}" for s in summaries.values() for f in s.failures]
    if failures:
        lines += ["", "Unexpected answers:", *failures[:20]]
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
    return "\n".join(lines)


def format_report(report: CoverageReport) -> str:
    """The coverage table and where the HTML is."""
    lines = [report.table.rstrip()]
    for key, why in report.rejected:
        lines.append(f"rejected {key}: {why}")
    if report.measured_files:
        lines.append(f"\nHTML report: {(report.html_dir / 'index.html').resolve()}")
    return "\n".join(lines)


def all_as_expected(summaries: Mapping[str, FunctionSummary]) -> bool:
    """No function gave an answer its scenario did not expect."""
    return not any(s.failures for s in summaries.values())
