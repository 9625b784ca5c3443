"""The load test under faults, checked against the ground truth.

Many containers of the test stack's functions serve a steady load through
the layer (zero-code mode, its extension uploading) while a
:class:`~test_stack.faults.FaultProxy` in front of moto's S3 fails every S3
call for a window, one fault after another, with fault-free windows between.
Idle containers are retired (SIGTERM, then SHUTDOWN) while the load goes on.
At the end every container is retired, the data in S3 is merged, and the run
is checked against the ground truth: each scenario's answer and executed
lines, measured by calling its handler in-process under coverage.py (one
context per event, see :func:`test_stack.replay.replay_measured`).

``python -m test_stack.reliability`` prints the figures (``--soak`` for the long run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Final

from coverage import CoverageData

from test_stack.faults import DEFAULT_SLOW_SECONDS, FAULTS, Fault, FaultProxy
from test_stack.functions import APP_ROOT, CATALOGUE, LambdaFunction
from test_stack.invocations import InvokeResult
from test_stack.load_summary import percentile
from test_stack.replay import INIT_CONTEXT, event_context
from test_stack.scenarios import Scenario, scenarios_for

#: Executed line numbers per absolute file path.
Lines = dict[str, set[int]]
#: (function, scenario name): a scenario's identity (its event may be unhashable).
ScenarioKey = tuple[str, str]
#: Errors that mean a sandbox crashed or hung, not that a handler raised.
CRASH_ERRORS: Final = frozenset({"Runtime.ExitError", "Sandbox.Timedout"})
BUCKET_PREFIX: Final = "lambda-coverage-reliability"
#: The longest a fault window is held open, past its length, until the fault met an upload.
FAULT_MET_LIMIT_S: Final = 30.0
#: The longest wait for every function's first answer (cold starts) before the windows.
WARM_UP_LIMIT_S: Final = 60.0


@dataclass(frozen=True)
class Settings:
    """The shape of one run."""

    #: Seconds each fault window lasts, and each fault-free window between them.
    window_s: float = 2.0
    #: Callers invoking at once (at least one per function).
    concurrency: int = 4
    #: Containers per function at most.
    containers: int = 2
    #: Seconds between retirements of one idle container (0: none mid-run).
    retire_every_s: float = 1.0
    faults: tuple[Fault, ...] = FAULTS
    functions: tuple[str, ...] = tuple(CATALOGUE)
    #: The wrapper's budget for one flush (``COVERAGE_UPLOAD_TIMEOUT``).
    upload_timeout_s: float = 1.0
    #: How long a ``slow`` answer is held (longer than the budget).
    slow_s: float = DEFAULT_SLOW_SECONDS
    #: ``COVERAGE_FLUSH_INTERVAL``: short, so that uploads happen inside every window.
    flush_interval_s: float = 1.0


#: The long run: ``python -m test_stack.reliability --soak`` (``make reliability-soak``).
SOAK: Final = Settings(window_s=20.0, concurrency=8, containers=4, retire_every_s=3.0)


@dataclass(frozen=True)
class GroundTruth:
    """What each scenario does without the wrapper: its answer and the lines it runs."""

    answers: dict[ScenarioKey, tuple[str | None, object]]
    lines: dict[ScenarioKey, Lines]
    #: Lines run by importing each function's handler.
    init_lines: dict[str, Lines]

    def executed(self, scenarios: Iterable[ScenarioKey]) -> Lines:
        """Every line that ``scenarios`` and the import of their functions run, per file."""
        chosen = set(scenarios)
        parts = [self.lines[k] for k in chosen]
        parts += [self.init_lines[f] for f in sorted({function for function, _ in chosen})]
        merged: Lines = {}
        for lines in parts:
            for name, numbers in lines.items():
                merged.setdefault(name, set()).update(numbers)
        return merged


@dataclass(frozen=True)
class Call:
    """One invocation as the caller saw it."""

    scenario: Scenario
    result: InvokeResult
    latency_ms: float
    #: The fault window the call overlapped (``None``: outside every window).
    fault: Fault | None


@dataclass
class ReliabilityRun:
    """Everything a run measured."""

    settings: Settings
    calls: list[Call]
    truth: GroundTruth
    merged: Lines
    #: Requests the proxy answered per fault (``forwarded``: passed on to S3).
    proxy_counts: dict[str, int]
    objects: int
    rejected: list[tuple[str, str]]
    retired_mid_run: int
    retired_reasons: dict[str, int]
    elapsed_s: float
    peak_rss_mib: float

    @property
    def wrong_results(self) -> list[Call]:
        """Calls whose answer differs from the unwrapped handler's."""
        return [
            c
            for c in self.calls
            if answer_of(c.result) != self.truth.answers[key(c.scenario)]
            or c.scenario.problem(c.result) is not None
        ]

    @property
    def crashes(self) -> list[Call]:
        """Calls that ended in a crashed or timed-out sandbox."""
        return [c for c in self.calls if c.result.error_type in CRASH_ERRORS]

    def missing_calls(self) -> list[Call]:
        """Calls with a ground-truth line that the merged report lacks."""
        return [c for c in self.calls if missing(self.truth.lines[key(c.scenario)], self.merged)]

    def missing_init(self) -> dict[str, Lines]:
        """Per function, import-time lines the merged report lacks."""
        found = {}
        called = {c.scenario.function for c in self.calls}
        for function, lines in self.truth.init_lines.items():
            if function not in called:
                continue
            gone = {n: ls - self.merged.get(n, set()) for n, ls in lines.items()}
            gone = {n: ls for n, ls in gone.items() if ls}
            if gone:
                found[function] = gone
        return found

    def report_differences(self) -> list[str]:
        """Files whose merged lines are not exactly the ground truth's, with the lines."""
        truth = self.truth.executed(key(c.scenario) for c in self.calls)
        found = []
        for name in sorted(set(truth) | set(self.merged)):
            want, got = truth.get(name, set()), self.merged.get(name, set())
            if want != got:
                found.append(
                    f"{name}: missing {sorted(want - got)}, never run yet reported "
                    f"{sorted(got - want)}"
                )
        return found


def comparable(error_type: str | None, answer: object) -> tuple[str | None, object]:
    """What must agree with the unwrapped handler: the error type, or the status code.

    The status code, not the whole answer: some scenarios answer with random
    numbers or times.
    """
    if error_type is not None:
        return (error_type, None)
    return (None, answer.get("statusCode") if isinstance(answer, dict) else answer)


def answer_of(result: InvokeResult) -> tuple[str | None, object]:
    """:func:`comparable` of an invoke's result."""
    return comparable(result.error_type, None if result.error_type else result.json())


def key(scenario: Scenario) -> ScenarioKey:
    """A scenario's identity."""
    return (scenario.function, scenario.name)


def missing(expected: Lines, merged: Lines) -> bool:
    """Whether any line of ``expected`` is absent from ``merged``."""
    return any(not lines <= merged.get(name, set()) for name, lines in expected.items())


# Ground truth ------------------------------------------------------------------


def ground_truth(scenarios: Sequence[Scenario], work: Path) -> GroundTruth:
    """Run each function's scenarios in-process under coverage.py, one context per event."""
    answers: dict[ScenarioKey, tuple[str | None, object]] = {}
    lines: dict[ScenarioKey, Lines] = {}
    if len({key(s) for s in scenarios}) != len(scenarios):
        raise ValueError("two scenarios of one function share a name; names must differ")
    init_lines: dict[str, Lines] = {}
    for name in sorted({s.function for s in scenarios}):
        function = CATALOGUE[name]
        mine = [s for s in scenarios if s.function == name]
        outcomes, data = _replay_measured(function, mine, work)
        for index, (scenario, outcome) in enumerate(zip(mine, outcomes, strict=True)):
            answers[key(scenario)] = comparable(outcome.get("errorType"), outcome.get("answer"))
            lines[key(scenario)] = _context_lines(data, event_context(index))
        init_lines[name] = _context_lines(data, INIT_CONTEXT)
    return GroundTruth(answers, lines, init_lines)


def _replay_measured(
    function: LambdaFunction, scenarios: Sequence[Scenario], work: Path
) -> tuple[list[dict[str, Any]], CoverageData]:
    events = work / f"{function.name}.events.json"
    events.write_text(json.dumps([s.event for s in scenarios]))
    data_file = work / f"{function.name}.truth.coverage"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    # Contexts are exact on ctrace only (sysmon records a line once).
    env.update(PYTHONPATH=str(APP_ROOT), COVERAGE_CORE="ctrace")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "test_stack.replay",
            "--handler",
            function.handler,
            "--events",
            str(events),
            "--measure",
            str(data_file),
        ],
        cwd=function.code_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data = CoverageData(basename=str(data_file))
    data.read()
    return [json.loads(line) for line in completed.stdout.splitlines()], data


def _context_lines(data: CoverageData, context: str) -> Lines:
    data.set_query_contexts([f"^{context}$"])
    try:
        found = {name: set(data.lines(name) or ()) for name in data.measured_files()}
    finally:
        data.set_query_contexts(None)
    return {name: numbers for name, numbers in found.items() if numbers}


# The run -------------------------------------------------------------------------


def run(settings: Settings = Settings(), *, work: Path | None = None) -> ReliabilityRun:
    """Serve load through every fault window, retire everything, merge, and measure."""
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-reliability-") as temporary:
        return _run(settings, work or Path(temporary))


def _run(settings: Settings, work: Path) -> ReliabilityRun:
    from test_stack.instrument import instrument
    from test_stack.layer import build_wrapper_layer
    from test_stack.pool import LocalLambda
    from test_stack.report import download_and_merge
    from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

    started = time.monotonic()
    scenarios = scenarios_for(list(settings.functions))
    truth = ground_truth(scenarios, work)
    bucket = f"{BUCKET_PREFIX}-{uuid.uuid4().hex[:8]}"
    prefix = "coverage/"
    with (
        moto_s3_server() as url,
        FaultProxy(url, slow_seconds=settings.slow_s) as proxy,
    ):
        s3 = s3_client(url)
        s3.create_bucket(Bucket=bucket)
        layer = build_wrapper_layer(work / "opt")
        functions = [
            instrument(
                CATALOGUE[name],
                layer=layer,
                bucket=bucket,
                prefix=prefix,
                COVERAGE_UPLOAD_TIMEOUT=str(settings.upload_timeout_s),
                COVERAGE_FLUSH_INTERVAL=str(settings.flush_interval_s),
            )
            for name in settings.functions
        ]
        with LocalLambda(
            functions,
            work_dir=work / "runtime",
            environment=s3_environment(proxy.url),
            max_concurrency=settings.containers,
            idle_timeout=None,
        ) as pool:
            load = _Load(pool, scenarios, proxy, settings)
            load.run()
            proxy.set_fault(None)
            retired_mid_run = len(pool.retired)
        # The pool is closed: every container was retired and had its shutdown.
        reasons: dict[str, int] = {}
        for report in pool.retired:
            reasons[report.reason] = reasons.get(report.reason, 0) + 1
        code_dirs = {name: CATALOGUE[name].code_dir for name in settings.functions}
        combined, stored, rejected = download_and_merge(
            s3, bucket, prefix, code_dirs, work / "merged"
        )
        merged = {name: set(combined.lines(name) or ()) for name in combined.measured_files()}
        counts = dict(proxy.counts)
    return ReliabilityRun(
        settings=settings,
        calls=load.calls,
        truth=truth,
        merged=merged,
        proxy_counts=counts,
        objects=len(stored),
        rejected=rejected,
        retired_mid_run=retired_mid_run,
        retired_reasons=reasons,
        elapsed_s=time.monotonic() - started,
        peak_rss_mib=peak_rss_mib(),
    )


class _Load:
    """Callers invoking in a loop while the windows pass and idle containers are retired."""

    def __init__(
        self,
        pool: Any,
        scenarios: Sequence[Scenario],
        proxy: FaultProxy,
        settings: Settings,
    ) -> None:
        self.pool = pool
        self.scenarios = list(scenarios)
        self.proxy = proxy
        self.settings = settings
        self.calls: list[Call] = []
        #: (start, end, fault) of each fault window, on the perf_counter clock.
        self.windows: list[tuple[float, float, Fault]] = []
        self._spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._stop = threading.Event()

    def run(self) -> None:
        # Callers are shared out among the functions, so that a function whose
        # sandboxes are held by uploads slows its own callers only.
        functions = sorted({s.function for s in self.scenarios})
        callers = [
            threading.Thread(
                target=self._call_loop,
                args=([s for s in self.scenarios if s.function == functions[i % len(functions)]],),
                name=f"caller-{i}",
                daemon=True,
            )
            for i in range(max(self.settings.concurrency, len(functions)))
        ]
        retirer = threading.Thread(target=self._retire_loop, name="retirer", daemon=True)
        for thread in [*callers, retirer]:
            thread.start()
        try:
            # Cold starts first: every function answers once before the first window.
            with self._lock:
                self._answered.wait_for(
                    lambda: {c.scenario.function for c in self.calls} >= set(functions),
                    WARM_UP_LIMIT_S,
                )
            self._stop.wait(self.settings.window_s)
            for fault in self.settings.faults:
                began = time.perf_counter()
                with self.proxy.window(fault):
                    self._stop.wait(self.settings.window_s)
                    # On a busy machine a window can pass without an upload: it lasts
                    # until the fault has met one (a bounded wait on that, not a sleep).
                    limit = time.perf_counter() + FAULT_MET_LIMIT_S
                    while not self.proxy.counts[fault] and time.perf_counter() < limit:
                        self._stop.wait(0.05)
                self.windows.append((began, time.perf_counter(), fault))
                self._stop.wait(self.settings.window_s)
        finally:
            self._stop.set()
            for thread in [*callers, retirer]:
                thread.join()
        # A call belongs to the fault window it overlapped, if any.
        self.calls = [
            replace(call, fault=self._window_of(began, ended))
            for call, (began, ended) in zip(self.calls, self._spans, strict=True)
        ]

    def _window_of(self, began: float, ended: float) -> Fault | None:
        for start, end, fault in self.windows:
            if began <= end and ended >= start:
                return fault
        return None

    def _call_loop(self, scenarios: Sequence[Scenario]) -> None:
        for scenario in itertools.cycle(scenarios):
            if self._stop.is_set():
                return
            began = time.perf_counter()
            result = self.pool.invoke(scenario.function, scenario.event)
            ended = time.perf_counter()
            with self._lock:
                self.calls.append(Call(scenario, result, (ended - began) * 1000, None))
                self._spans.append((began, ended))
                self._answered.notify_all()

    def _retire_loop(self) -> None:
        every = self.settings.retire_every_s
        if every <= 0:
            return
        for function in itertools.cycle(self.settings.functions):
            if self._stop.wait(every):
                return
            # SIGTERM, then SHUTDOWN, to one container of one function once its
            # invoke ends, while the callers go on (on other or new containers).
            self.pool.retire_one(function, reason="spindown", timeout=every)


def peak_rss_mib() -> float:
    """The largest resident set of this process or any container process it reaped, in MiB."""
    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is in KiB on Linux.
    return max(mine, children) / 1024


# Figures -------------------------------------------------------------------------


def figures(run: ReliabilityRun) -> str:
    """The figures of a run, as RELIABILITY.md shows them."""
    calls = run.calls
    inside = [c.latency_ms for c in calls if c.fault is not None]
    outside = [c.latency_ms for c in calls if c.fault is None]
    s = run.settings
    lines = [
        f"faults tried: {', '.join(s.faults)} ({s.window_s:g} s each, "
        f"{s.window_s:g} s without a fault between; upload budget {s.upload_timeout_s:g} s, "
        f"slow answers held {s.slow_s:g} s)",
        f"functions: {', '.join(s.functions)}; up to {s.containers} containers each, "
        f"{s.concurrency} callers",
        f"invocations served: {len(calls)}",
        f"handler results different from an unwrapped run: {len(run.wrong_results)}",
        f"invocations whose lines are missing from the combined report: {len(run.missing_calls())}",
        f"import-time lines missing: {sum(len(v) for v in run.missing_init().values())} files",
        f"combined report equals the ground truth (exact line sets): "
        f"{'yes' if not run.report_differences() else 'NO'}",
        f"crashes (Runtime.ExitError, Sandbox.Timedout): {len(run.crashes)}",
        f"containers retired: {sum(run.retired_reasons.values())} "
        f"({run.retired_mid_run} while the load ran; "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.retired_reasons.items()))
        + ")",
        f"objects in S3: {run.objects}; rejected by the combiner: {len(run.rejected)}",
        "S3 requests at the proxy: "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.proxy_counts.items())),
        f"caller latency outside fault windows: p50 {percentile(outside, 0.5):.1f} ms, "
        f"p99 {percentile(outside, 0.99):.1f} ms ({len(outside)} calls)",
        f"caller latency inside fault windows:  p50 {percentile(inside, 0.5):.1f} ms, "
        f"p99 {percentile(inside, 0.99):.1f} ms ({len(inside)} calls)",
    ]
    for fault in s.faults:
        mine = [c.latency_ms for c in calls if c.fault == fault]
        lines.append(
            f"  {fault:<15} p50 {percentile(mine, 0.5):7.1f} ms  "
            f"p99 {percentile(mine, 0.99):7.1f} ms  ({len(mine)} calls)"
        )
    lines += [
        f"peak memory (largest process: this driver with moto, or a container): "
        f"{run.peak_rss_mib:.0f} MiB",
        f"run time: {run.elapsed_s:.1f} s",
    ]
    problems = [*run.report_differences()[:5]]
    problems += [
        f"wrong: {c.scenario.function}/{c.scenario.name}: {answer_of(c.result)}"
        for c in run.wrong_results[:5]
    ]
    if problems:
        lines += ["", "Problems:", *problems]
    return "\n".join(lines)


def holds(run: ReliabilityRun) -> bool:
    """Every promise held: no wrong result, no crash, nothing missing, the report exact."""
    return not (
        run.wrong_results
        or run.crashes
        or run.missing_calls()
        or run.missing_init()
        or run.report_differences()
        or run.rejected
    )


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run and print the figures; exit 1 when a promise did not hold."""
    stream = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m test_stack.reliability", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        help=f"the long run: {SOAK.window_s:g} s windows, {SOAK.containers} containers "
        f"per function, {SOAK.concurrency} callers",
    )
    parser.add_argument("--window", type=float, help="seconds per window (default 2; --soak: 20)")
    args = parser.parse_args(argv)
    settings = SOAK if args.soak else Settings()
    if args.window is not None:
        if args.window <= 0:
            parser.error(f"--window {args.window:g} must be more than 0 seconds")
        settings = replace(settings, window_s=args.window)
    stream.write(
        f"Reliability run: python -m test_stack.reliability{' --soak' if args.soak else ''}\n"
    )
    stream.flush()
    result = run(settings)
    stream.write(figures(result) + "\n")
    return 0 if holds(result) else 1


if __name__ == "__main__":
    sys.exit(main())
