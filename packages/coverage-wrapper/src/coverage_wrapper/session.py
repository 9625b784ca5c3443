"""The container session: the one place that ties measurement, spool and upload.

There is one session per process, created on first use from the frozen
configuration. Entry points call :meth:`ContainerSession.begin_invocation`
and :meth:`ContainerSession.end_invocation` around the handler; both swallow
every error of their own (logged, counted, shown by the health check), so
the handler's return value and exception reach the runtime unchanged.

What a data file is called lives in :mod:`coverage_wrapper.data_labels`; the
process's own uploads (without the extension) in
:mod:`coverage_wrapper.session_uploads`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverage_wrapper import logs
from coverage_wrapper.attribution import (
    INVOCATION,
    Phase,
    dynamic_context,
    run_id_in_event,
    run_id_problem,
)
from coverage_wrapper.config import WrapperConfig, environment_config
from coverage_wrapper.constants import FlushPolicy
from coverage_wrapper.data_labels import object_key, object_metadata
from coverage_wrapper.flush_policy import FlushSchedule, TimeoutGuard, effective_policy
from coverage_wrapper.handoff import ATTACH, DONE, FINAL, ExtensionLink
from coverage_wrapper.identity import (
    container_id,
    forget_container_id_after_snapshot_restore,
)
from coverage_wrapper.logs import log
from coverage_wrapper.measurement import Measurement
from coverage_wrapper.spool import Spool
from coverage_wrapper.status import FlushRecord, ProcessStatus

if TYPE_CHECKING:
    from coverage_wrapper.session_uploads import SessionUploads
    from coverage_wrapper.uploader import S3Uploader


@dataclass(frozen=True)
class Invocation:
    """What :meth:`ContainerSession.begin_invocation` opened."""

    request_token: contextvars.Token[str | None] | None
    entered: bool


class ContainerSession:
    """Coverage for this process: one measurement, one spool, one uploader."""

    def __init__(self, config: WrapperConfig) -> None:
        self.config = config
        self.status = ProcessStatus()
        logs.configure(config.log_level)
        for problem in config.problems:
            self.status.add_problem(problem)
            log(logging.WARNING, problem, problem="configuration")
        if config.enabled and not config.s3_bucket:
            self.status.add_problem(
                "COVERAGE_S3_BUCKET is not set: coverage is measured and kept in "
                f"{config.spool_dir}/pending but not uploaded; set it to the bucket's name"
            )
        self.measurement = Measurement(config) if config.enabled else None
        if config.enabled:
            forget_container_id_after_snapshot_restore()
        self.spool = Spool(config.spool_dir, config.spool_max_files)
        # The process's own uploads (and their modules) are set up at the first
        # upload: with the layer's extension there is none.
        self._uploads: SessionUploads | None = None
        self._uploads_lock = threading.Lock()
        self._seq = 0
        self._flush_lock = threading.Lock()
        self.link = ExtensionLink(config.spool_dir)
        self.schedule = FlushSchedule(config.flush_interval)
        self._guard = TimeoutGuard(self._save_before_timeout)
        self._open_invocations = 0
        #: The run the data is recorded under now: ``COVERAGE_RUN_ID`` until an
        #: invocation's event names another (``COVERAGE_RUN_ID_FIELD``).
        self.run_id = config.run_id
        self._run_id_problem_logged = False

    def start_extension_handoff(self, *, attach: bool) -> bool:
        """With the layer's extension running, save the last snapshot at SIGTERM.

        ``attach`` also tells the extension to wait, after each invocation,
        until this process says it is done: only for an entry point that
        wraps the Lambda handler itself from init on (zero-code mode); a
        decorated handler attaches with its first ``done``. Returns whether
        the extension is there.
        """
        if self.measurement is None:
            return False
        if not self.link.present():
            if self.config.flush_policy == "shutdown":
                problem = (
                    "COVERAGE_FLUSH_POLICY='shutdown' needs the layer's extension (Lambda "
                    "signals a shutdown only when an extension runs); without it nothing "
                    "would ever be uploaded, so each invocation flushes as with 'interval'"
                )
                self.status.add_problem(problem)
                log(logging.WARNING, problem, problem="configuration")
            return False
        from coverage_wrapper.shutdown import save_on_sigterm

        save_on_sigterm(self.final_flush)
        if attach:
            self.link.send(ATTACH)
        return True

    @property
    def flush_policy(self) -> FlushPolicy:
        """The flush policy in force (the default depends on whether the extension runs)."""
        return effective_policy(self.config.flush_policy, self.link.present())

    # Scopes -----------------------------------------------------------------

    def enter_scope(self, phase: Phase = INVOCATION) -> bool:
        """Open a measured scope; True when :meth:`exit_scope` must follow.

        ``phase`` is what the lines run in it are attributed to
        (:data:`~coverage_wrapper.attribution.INIT` or
        :data:`~coverage_wrapper.attribution.INVOCATION`).
        """
        if self.measurement is None:
            return False
        return self.measurement.enter(dynamic_context(phase, self.run_id))

    def exit_scope(self, entered: bool) -> None:
        """Close a scope opened by :meth:`enter_scope`."""
        if entered and self.measurement is not None:
            self.measurement.exit()

    # Invocations ------------------------------------------------------------

    def begin_invocation(self, context: Any, event: Any = None) -> Invocation:
        """Start measuring one invocation (if sampled). Never raises.

        With ``COVERAGE_RUN_ID_FIELD`` set, ``event`` may name the run this
        invocation belongs to (see :meth:`follow_run`).
        """
        token = None
        try:
            token = logs.request_id.set(_request_id(context))
            with self.status.lock:
                self.status.invocations += 1
                self._open_invocations += 1
                outermost = self._open_invocations == 1
            rate = self.config.sample_rate
            sampled = rate >= 1.0 or (rate > 0.0 and random.random() < rate)
            if sampled and outermost and self.measurement is not None:
                self.follow_run(self._event_run_id(event), context)
                self._arm_timeout_guard(context)
            return Invocation(token, self.enter_scope() if sampled else False)
        except Exception as exc:  # noqa: BLE001 - never break the function
            log(logging.ERROR, "Coverage could not begin the invocation", error=str(exc))
            return Invocation(token, False)

    def end_invocation(self, invocation: Invocation, context: Any) -> None:
        """Stop measuring and flush by policy. Never raises."""
        outermost = False
        try:
            with self.status.lock:
                self._open_invocations = max(0, self._open_invocations - 1)
                outermost = self._open_invocations == 0
            if outermost:
                self._guard.disarm()
            if invocation.entered:
                self.exit_scope(True)
                with self.status.lock:
                    self.status.measured_invocations += 1
                    measured = self.status.measured_invocations
                self.flush_if_due(context, measured)
        except Exception as exc:  # noqa: BLE001
            log(logging.ERROR, "Coverage could not end the invocation", error=str(exc))
        finally:
            request_id = _request_id(context)
            if outermost and request_id is not None and self.measurement is not None:
                # Whatever this invocation flushed is in the spool: the extension
                # may upload now. Sent even when nothing was measured, because an
                # attached extension waits for it.
                self.link.send(DONE, request_id)
            # A reset from another context (a thread) has nothing to restore.
            if invocation.request_token is not None:
                with contextlib.suppress(ValueError):
                    logs.request_id.reset(invocation.request_token)

    # Runs -------------------------------------------------------------------

    def follow_run(self, run_id: str | None, context: Any = None) -> None:
        """Record from now on under ``run_id``, after flushing the old run's data under its key.

        Only between measurements (an outermost invocation about to start):
        the new label then takes effect right after coverage.py starts, which
        is exact on every core. While another scope is open (a concurrent
        invocation in another thread) the run in force is kept.
        """
        if run_id == self.run_id or self.measurement is None or self.measurement.active:
            return
        # Snapshots are cumulative, so later ones (under the new run's key)
        # hold this run's contexts too; this flush is what puts the lines
        # measured since the last one under a key of their own run.
        self.flush(context)
        self.run_id = run_id

    def _event_run_id(self, event: Any) -> str | None:
        """This invocation's run id: the event's, else ``COVERAGE_RUN_ID``."""
        path = self.config.run_id_field
        if path is None:
            return self.config.run_id
        found = run_id_in_event(event, path)
        if found is None:
            return self.config.run_id
        problem = run_id_problem(found)
        if problem is None:
            return str(found)
        if not self._run_id_problem_logged:
            self._run_id_problem_logged = True
            message = (
                f"The run id at COVERAGE_RUN_ID_FIELD={'.'.join(path)!r} {problem}; such "
                "invocations are recorded under COVERAGE_RUN_ID (or no run id). Send a run id "
                "such as 'ci-1234' (only this first bad value is logged)"
            )
            self.status.add_problem(message)
            log(logging.WARNING, message, problem="configuration")
        return self.config.run_id

    # Flush ------------------------------------------------------------------

    def flush_if_due(self, context: Any, measured: int) -> FlushRecord | None:
        """Flush if the policy says so after the ``measured``-th measured invocation or block."""
        if self.measurement is None or self.measurement.active:
            return None
        if not self.schedule.due(self.flush_policy, measured):
            return None
        return self.flush(context)

    def flush(
        self, context: Any = None, *, while_measuring: bool = False, upload: bool = True
    ) -> FlushRecord | None:
        """Snapshot the data into the spool and, without the extension, upload what waits.

        With the layer's extension running the snapshot is left for it (the
        function never uploads). Returns the record of this flush, or None
        when nothing new was measured since the last snapshot.
        """
        if self.measurement is None:
            return None
        with self._flush_lock:
            self.schedule.flushed()
            started = time.monotonic()
            try:
                data_path = self.measurement.save(while_measuring=while_measuring)
            except Exception as exc:  # noqa: BLE001
                return self._record(FlushRecord(outcome="failed", error=f"saving data: {exc}"))
            if data_path is None:
                return None
            self._seq += 1
            key = object_key(self.config, self._seq, run_id=self.run_id)
            try:
                entry = self.spool.add(
                    data_path,
                    name=f"{container_id()}-{os.getpid()}-{self._seq:06d}",
                    key=key,
                    metadata=object_metadata(self.config, run_id=self.run_id),
                    seq=self._seq,
                )
            except OSError as exc:
                # /tmp is full or read-only: the data is still in memory and the
                # next flush tries again.
                self.measurement.mark_unsaved()
                return self._record(
                    FlushRecord(outcome="failed", s3_key=key, error=f"spool: {exc}")
                )
            superseded = self.spool.remove_superseded(entry)
            if self.link.present():
                record = FlushRecord(outcome="handed-off", s3_key=key, bytes=entry.size)
                log(logging.DEBUG, "Coverage snapshot spooled for the extension", s3_key=key)
            elif upload:
                uploads = self.uploads
                record = uploads.upload_pending(started + uploads.budget(context), key, entry.size)
            else:
                record = FlushRecord(outcome="spooled", s3_key=key, bytes=entry.size)
            dropped = self.spool.enforce_bound()
            with self.status.lock:
                self.status.superseded_files += superseded
                self.status.dropped_files += len(dropped)
            if dropped:
                log(
                    logging.WARNING,
                    "Spool full: dropped the oldest coverage data files",
                    dropped_files=len(dropped),
                    dropped_keys=[e.key for e in dropped],
                    spool_max_files=self.spool.max_files,
                )
            return self._record(record)

    def final_flush(self) -> None:
        """Save the last snapshot (the sandbox is shutting down) and tell the extension."""
        self.flush(while_measuring=True, upload=False)
        self.link.send(FINAL)

    def _save_before_timeout(self) -> None:
        try:
            record = self.flush(while_measuring=True, upload=False)
        except Exception as exc:  # noqa: BLE001 - runs beside the handler; never disturb it
            log(logging.WARNING, "Coverage could not save before the timeout", error=str(exc))
            return
        if record is not None:
            log(
                logging.INFO,
                "Coverage saved a snapshot before the invocation's timeout",
                s3_key=record.s3_key,
            )

    def _arm_timeout_guard(self, context: Any) -> None:
        if self.flush_policy != "adaptive":
            return
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            with contextlib.suppress(TypeError, ValueError):
                self._guard.arm(float(remaining()) / 1000)

    @property
    def uploads(self) -> SessionUploads:
        """The process's own uploads (without the extension), set up on first use."""
        with self._uploads_lock:
            if self._uploads is None:
                from coverage_wrapper.session_uploads import SessionUploads

                self._uploads = SessionUploads(self.config, self.spool, self.status)
            return self._uploads

    def uploader(self) -> S3Uploader:
        """The process's uploader (no boto3 import until it uploads)."""
        return self.uploads.uploader()

    @property
    def upload_pause_reason(self) -> str | None:
        """Why uploads are paused, if they are (never creates the uploader)."""
        uploads = self._uploads
        return None if uploads is None else uploads.pause_reason

    def probe_bucket(self) -> dict[str, Any]:
        """Check, at most every few minutes, that the bucket accepts a write."""
        return self.uploads.probe_bucket()

    def _record(self, record: FlushRecord) -> FlushRecord:
        with self.status.lock:
            self.status.last_flush = record
        return record

    def close(self) -> None:
        """Stop measuring (used when a process is reset, e.g. between tests)."""
        if self.measurement is not None:
            self.measurement.close()
        self.link.close()


_session: ContainerSession | None = None
_session_lock = threading.Lock()


def get_session(config: WrapperConfig | None = None) -> ContainerSession:
    """The process's session, created from ``config`` (or the environment) on first use."""
    global _session  # noqa: PLW0603 - one session per process by design
    with _session_lock:
        if _session is None:
            _session = ContainerSession(config or environment_config())
            _session.start_extension_handoff(attach=False)
        elif config is not None and _comparable(config) != _comparable(_session.config):
            first = _session.config
            ignored = sorted(
                name
                for name in first._fields
                if name != "problems" and getattr(config, name) != getattr(first, name)
            )
            _session.status.add_ignored_options(ignored)
            _session.status.add_problem(
                "Handlers in this process asked for different coverage options "
                f"({', '.join(ignored)}); the first configuration is used for all of them"
            )
        return _session


def current_session() -> ContainerSession | None:
    """The session if one was created, without creating it."""
    return _session


def reset_session() -> None:
    """Forget the process's session, stopping its measurement first."""
    global _session  # noqa: PLW0603
    with _session_lock:
        if _session is not None:
            _session.close()
        _session = None
    environment_config.cache_clear()


def _comparable(config: WrapperConfig) -> WrapperConfig:
    return config._replace(problems=())


def _request_id(context: Any) -> str | None:
    value = getattr(context, "aws_request_id", None)
    return str(value) if value else None
