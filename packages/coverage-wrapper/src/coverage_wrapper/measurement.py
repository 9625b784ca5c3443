"""The process's one coverage.py measurement, switched on and off by scopes.

Every entry point (decorator, context manager, zero-code handler) opens a
*scope*. The first scope starts coverage.py; nested scopes, in the same
thread or in others, only join it; the last scope to close stops it. So
tracing is on exactly while at least one scope is open, and leaving an inner
block never stops the outer one.

Data stays in memory between scopes and accumulates across the invocations of
a warm container. ``save()`` writes it (cumulatively) to this process's data
file; the session copies that file into the spool as one snapshot. Erasing
between snapshots would make coverage.py set itself up again (~4 ms) at the
next start, so snapshots are cumulative instead: a newer one of a process
holds everything an older one did.

coverage.py is imported here, lazily, at the first scope: importing the
wrapper costs nothing when coverage is disabled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from coverage_wrapper.config import WrapperConfig
from coverage_wrapper.constants import ENV_SPOOL_DIR
from coverage_wrapper.identity import context_label
from coverage_wrapper.logs import log
from coverage_wrapper.scope import measured_scope

if TYPE_CHECKING:
    import coverage

#: coverage.py's ``sys.monitoring`` core.
SYSMON = "sysmon"

# Warnings that describe normal Lambda situations, not problems worth a log line.
_QUIET_WARNINGS = [
    "no-data-collected",
    "module-not-measured",
    "module-not-imported",
    "include-ignored",
    # The dynamic context is switched only right after a start, where sysmon
    # is exact too (see coverage_wrapper.attribution).
    "no-sysmon-context",
]


def _trace_this_thread() -> None:
    """Make a thread that joins a running measurement traced too.

    coverage.py's trace-function cores trace the thread that started them
    and threads started afterwards (through ``threading.settrace``). A thread
    that already existed and opens a scope later gets the same installer
    coverage.py gave to new threads, so what it calls from now on is
    measured. The ``sys.monitoring`` core covers every thread by itself.
    """
    if sys.gettrace() is not None:
        return
    installer = threading.gettrace()
    if installer is not None:
        sys.settrace(installer)
        # The installer makes the thread's tracer at its first call event.
        # Left to the caller's next call, outside the measurement's lock,
        # threads lost lines of the calls they joined for (8 threads x 200
        # calls lost up to 73 lines; none since it fires here, under the lock).
        _first_traced_call()


def _first_traced_call() -> None:
    """A call whose only purpose is the trace event that installs the tracer."""


#: The first coverage.py whose flush keeps what other threads record meanwhile
#: (coverage.py issue 2384). Older ones copy the collected data, then clear it.
THREAD_SAFE_FLUSH = (7, 17, 4)


def flush_keeps_concurrent_lines() -> bool:
    """Whether ``Coverage.get_data()`` may run while other threads are traced.

    Before :data:`THREAD_SAFE_FLUSH`, lines recorded by another thread
    between coverage.py's copy of its collected data and its clearing of it
    are dropped, from memory too. The wrapper saves while measuring only
    before a timeout and at shutdown; with an older coverage.py it reports
    each such snapshot as a possible loss in the health check.
    """
    import coverage

    return coverage.version_info[:3] >= THREAD_SAFE_FLUSH


def measured_size(data: coverage.CoverageData, context: str | None = None) -> int:
    """How many lines (or arcs, for branch data) ``data`` holds, over all files.

    With ``context``, only those recorded under that context: a line already
    seen under another context (an earlier run, init) is new under this one.
    The data only grows, so the number changes exactly when something new
    was measured.
    """
    if context is not None:
        data.set_query_context(context)
    try:
        if data.has_arcs():
            return sum(len(data.arcs(path) or ()) for path in data.measured_files())
        return sum(len(data.lines(path) or ()) for path in data.measured_files())
    finally:
        if context is not None:
            data.set_query_contexts(None)


def default_core(branch: bool, configured: object) -> str | None:
    """The core the wrapper asks for when none is configured; None leaves coverage.py's choice.

    Line-only measurement (``COVERAGE_BRANCH_COVERAGE=false``) on Python 3.12
    and 3.13 uses ``sysmon``: it stops reporting a line once seen, so a warm
    handler runs at about its bare speed, where ``ctrace`` calls a C function
    on every line (BENCHMARKS.md, "coverage.py cores"). Branch data keeps
    coverage.py's default (``ctrace``): before 3.14 ``sysmon`` cannot measure
    branches. From 3.14 coverage.py picks ``sysmon`` itself where it can.
    ``COVERAGE_CORE`` or a ``core`` in the configuration file always wins.
    """
    if configured or branch or not (3, 12) <= sys.version_info[:2] < (3, 14):
        return None
    return SYSMON


#: What coverage.py's collector holds as the call stack it was created from
#: when the wrapper created it (see :func:`start_coverage`).
UNRECORDED_ORIGIN = "(call stack not recorded: coverage_wrapper.measurement.start_coverage)"


def start_coverage(cov: coverage.Coverage) -> None:
    """``cov.start()``, without the call-stack text coverage.py keeps from its first start.

    coverage.py's collector, made at the first ``start()``, stores a summary
    of ``inspect.stack()`` that it prints only if collectors are ever stopped
    out of order (its own diagnostics). Summarising looks up the module of
    every frame, which resolves the path of every module imported so far: in
    zero-code mode, under the runtime's import of the handler, 9-18 ms of
    each cold start measured here, more than half of coverage.py's start
    itself. That one string is replaced by :data:`UNRECORDED_ORIGIN`, for this
    start only; a coverage.py that names no ``short_stack`` starts unchanged.
    """
    collector = sys.modules.get("coverage.collector")
    original = getattr(collector, "short_stack", None)
    if collector is None or original is None:
        cov.start()
        return
    setattr(collector, "short_stack", _unrecorded_stack)  # noqa: B010 - mypy cannot see it
    try:
        cov.start()
    finally:
        setattr(collector, "short_stack", original)  # noqa: B010


def _unrecorded_stack(*_args: object, **_kwargs: object) -> str:
    return UNRECORDED_ORIGIN


class MeasurementState:
    """Names of the states reported by the health check."""

    IDLE = "idle"
    MEASURING = "measuring"
    EXTERNAL = "external"
    FAILED = "failed"


class Measurement:
    """One ``coverage.Coverage`` per process, created on first use."""

    def __init__(self, config: WrapperConfig) -> None:
        self._config = config
        self._lock = threading.RLock()
        self._cov: coverage.Coverage | None = None
        self._depth = 0
        self._unsaved = False
        #: The context and its size at the last snapshot written.
        self._saved_size: tuple[str | None, int] | None = None
        self.state = MeasurementState.IDLE
        self.failure: str | None = None
        #: Snapshots saved while a scope was open, and context switches made
        #: while other threads ran, with a coverage.py whose flush can drop
        #: lines other threads record meanwhile.
        self.unsafe_snapshots = 0
        self.data_file = Path(config.spool_dir) / "measure" / f".coverage.{os.getpid()}"
        self._core: str | None = None
        self._label: str | None = None
        self._started = False

    @property
    def active(self) -> bool:
        """Whether a scope is open and coverage is tracing."""
        return self._depth > 0

    def enter(self, label: str | None = None) -> bool:
        """Open a scope. Returns True when the caller must call :meth:`exit` later.

        ``label`` is the dynamic context of what the scope runs
        (:func:`coverage_wrapper.attribution.dynamic_context`). Only the
        outermost scope's label counts: a scope that joins a running
        measurement records under the label already in force.
        """
        with self._lock:
            if self._depth > 0:
                self._depth += 1
                _trace_this_thread()
                return True
            if self.state == MeasurementState.FAILED:
                return False
            try:
                cov = self._coverage()
                import coverage

                running = coverage.Coverage.current()
                if running is not None and running is not cov:
                    # pytest-cov or COVERAGE_PROCESS_START already measures this
                    # process: a second start would pause theirs.
                    if self.state != MeasurementState.EXTERNAL:
                        log(
                            logging.WARNING,
                            "Another coverage measurement is running in this process; "
                            "the wrapper will not start its own",
                        )
                    self.state = MeasurementState.EXTERNAL
                    return False
                if self._started:
                    cov.start()
                else:
                    start_coverage(cov)
                    self._started = True
                if label is not None and label != self._label:
                    self._switch_context(cov, label)
            except Exception as exc:  # noqa: BLE001 - measurement must never break the function
                self._fail("Coverage could not start", exc)
                self._stop_quietly()
                return False
            self._depth = 1
            self._unsaved = True
            self.state = MeasurementState.MEASURING
            return True

    def exit(self) -> None:
        """Close a scope opened by a successful :meth:`enter`."""
        with self._lock:
            if self._depth == 0:
                return
            self._depth -= 1
            if self._depth > 0:
                return
            self.state = MeasurementState.IDLE
            try:
                if self._cov is not None:
                    self._cov.stop()
            except Exception as exc:  # noqa: BLE001
                self._fail("Coverage could not stop", exc)

    def save(self, *, while_measuring: bool = False) -> Path | None:
        """Write what was measured so far; None when nothing new was measured.

        A snapshot is written only when the data grew since the last one
        (data only grows: it is cumulative), so a warm container replaying
        known paths writes nothing. Normally only called when no scope is
        open: a scope still open (a flush from a nested entry point) keeps
        measuring and is saved by the outermost one. ``while_measuring``
        saves anyway (at shutdown, or before a timeout), from another thread.
        """
        with self._lock:
            if self._cov is None or not self._unsaved:
                return None
            if self._depth > 0 and not while_measuring:
                return None
            if self._depth > 0 and not flush_keeps_concurrent_lines():
                self.unsafe_snapshots += 1
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
            data = self._cov.get_data()
            data.write()
            if self._depth == 0:
                self._unsaved = False
            # Only the context in force grows while it is in force.
            context = self._full_context()
            size = (context, measured_size(data, context))
            if size == self._saved_size:
                return None
            self._saved_size = size
            return self.data_file

    def mark_unsaved(self) -> None:
        """Make the next :meth:`save` write again (the last snapshot was not kept)."""
        with self._lock:
            self._unsaved = True
            self._saved_size = None

    def close(self) -> None:
        """Stop measuring whatever scopes are open."""
        with self._lock:
            self._depth = 0
            self._stop_quietly()
            self.state = MeasurementState.IDLE

    def core(self) -> str | None:
        """The coverage.py core in use (``CTracer``, ``SysMonitor``, ``PyTracer``)."""
        with self._lock:
            if self._core is None and self._cov is not None:
                try:
                    info = dict(self._cov.sys_info())
                    self._core = str(info.get("core") or "") or None
                except Exception:  # noqa: BLE001
                    self._core = None
            return self._core

    def _coverage(self) -> coverage.Coverage:
        if self._cov is not None:
            return self._cov
        import coverage

        config = self._config
        scope = measured_scope(config.task_root, config.include, config.exclude)
        try:
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"{ENV_SPOOL_DIR}={config.spool_dir!r} is not a writable folder "
                f"({exc.strerror}); point it at a folder under /tmp"
            ) from exc
        # A file left by an earlier process with the same pid must not be merged into ours.
        with contextlib.suppress(OSError):
            self.data_file.unlink(missing_ok=True)
        cov = coverage.Coverage(
            data_file=str(self.data_file),
            data_suffix=False,
            config_file=config.coverage_config_file or False,
            branch=config.branch,
            include=list(scope.include),
            omit=list(scope.omit),
            context=context_label(config.function_name, config.function_version),
            auto_data=False,
        )
        cov.set_option("run:relative_files", True)
        cov.set_option("run:disable_warnings", _QUIET_WARNINGS)
        if default_core(config.branch, cov.get_option("run:core")) == SYSMON:
            cov.set_option("run:core", SYSMON)
        self._cov = cov
        return cov

    def _full_context(self) -> str | None:
        """The context coverage.py records under now (``static|dynamic``), once switched."""
        if self._label is None:
            return None
        static = context_label(self._config.function_name, self._config.function_version)
        return f"{static}|{self._label}"

    def _switch_context(self, cov: coverage.Coverage, label: str) -> None:
        # Right after start(), before any measured code: exact on sysmon too
        # (start() re-arms every line event).
        if (
            threading.active_count() > 1
            and self.core() == "SysMonitor"
            and not flush_keeps_concurrent_lines()
        ):
            # Switching flushes what was collected, the same flush as a save
            # while measuring. On sysmon every thread is traced from start()
            # on, so another thread may lose lines it records during it; the
            # trace-function cores trace only this thread yet.
            self.unsafe_snapshots += 1
        try:
            cov.switch_context(label)
        except Exception as exc:  # noqa: BLE001
            # Writing the lines measured under the old label failed (/tmp is
            # full): they stay in memory, measuring goes on, and the switch is
            # tried again at the next start.
            log(
                logging.WARNING,
                "Coverage could not switch its context; it tries again at the next invocation",
                context=label,
                error=str(exc),
            )
            return
        self._label = label

    def _stop_quietly(self) -> None:
        # A start that failed half-way may have switched tracing on: switch it off.
        try:
            if self._cov is not None:
                self._cov.stop()
        except Exception:  # noqa: BLE001, S110 - best effort after a failure already logged
            pass

    def _fail(self, message: str, exc: BaseException) -> None:
        self.state = MeasurementState.FAILED
        self.failure = f"{message}: {type(exc).__name__}: {exc}"
        self._depth = 0
        log(logging.ERROR, message, error_type=type(exc).__name__, error=str(exc))
