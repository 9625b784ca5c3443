"""Health of the wrapper in this process, as a JSON-serialisable dict.

It tells whether coverage is on, what is wrong with the configuration, how
the last flush went and what waits in the spool. It never contains
credentials or the environment; the bucket name and prefix are the only
settings it repeats.
"""

from __future__ import annotations

import platform
from typing import Any

from coverage_wrapper.__about__ import __version__
from coverage_wrapper.config import environment_config
from coverage_wrapper.data_labels import coverage_version
from coverage_wrapper.flush_policy import effective_policy
from coverage_wrapper.handoff import ExtensionLink
from coverage_wrapper.session import ContainerSession, current_session


def get_coverage_status() -> dict[str, Any]:
    """The wrapper's state in this process (no network calls)."""
    session = current_session()
    config = session.config if session is not None else environment_config()
    problems: list[str] = list(session.status.problems) if session else list(config.problems)
    measurement: dict[str, Any] = {"state": "disabled", "core": None, "failure": None}
    status: dict[str, Any] = {}
    spool_files = spool_bytes = 0
    if session is not None:
        status = session.status.as_dict()
        spool_files, spool_bytes = session.spool.backlog()
        if session.measurement is not None:
            m = session.measurement
            measurement = {
                "state": m.state,
                "core": m.core(),
                "failure": m.failure,
                "unsafe_snapshots": m.unsafe_snapshots,
            }
            if m.failure and m.failure not in problems:
                problems.append(m.failure)
            if m.unsafe_snapshots:
                problems.append(
                    f"{m.unsafe_snapshots} snapshot(s) or context switch(es) were made while "
                    "code was measured (before a timeout, at shutdown, or between init and "
                    f"the first invocation while threads ran) with coverage.py "
                    f"{coverage_version()}, "
                    "which drops lines other threads record during the save: lines may be "
                    "missing; use coverage.py 7.17.4 or newer"
                )
            if m.state == "external":
                problems.append(
                    "another coverage measurement (pytest-cov, COVERAGE_PROCESS_START) runs "
                    "in this process; the wrapper leaves it alone and measures nothing itself"
                )
        if session.upload_pause_reason:
            problems.append(f"uploads paused after: {session.upload_pause_reason}")
    elif config.enabled:
        measurement["state"] = "not-started"
    return {
        "coverage_enabled": config.enabled,
        "problems": problems,
        "measurement": measurement,
        "configuration": {
            "s3_bucket": config.s3_bucket,
            "s3_prefix": config.s3_prefix,
            "branch": config.branch,
            "flush_policy": effective_policy(
                config.flush_policy, ExtensionLink(config.spool_dir).present()
            ),
            "flush_interval": config.flush_interval,
            "sample_rate": config.sample_rate,
            "upload_timeout": config.upload_timeout,
            "function": config.function_name,
            "version": config.function_version,
            "key_template": config.key_template,
            "run_id": config.run_id,
            "ignored_options": list(session.status.ignored_options) if session else [],
        },
        "last_flush": status.get("last_flush"),
        "counters": {k: v for k, v in status.items() if k != "last_flush"},
        "spool": {
            "directory": f"{config.spool_dir}/pending",
            "pending_files": spool_files,
            "pending_bytes": spool_bytes,
            "max_files": config.spool_max_files,
        },
        "versions": {
            "wrapper": __version__,
            "coverage": coverage_version() if config.enabled else None,
            "python": platform.python_version(),
        },
    }


def health_check_handler(*, probe_s3: bool | None = None) -> dict[str, Any]:
    """Health status: ``healthy`` or ``degraded``, with the reasons.

    ``probe_s3=True`` (or ``COVERAGE_HEALTH_PROBE=true``) also checks that the
    bucket accepts a small write; the answer is cached for a few minutes.
    """
    result = get_coverage_status()
    session: ContainerSession | None = current_session()
    config = session.config if session is not None else environment_config()
    if probe_s3 is None:
        probe_s3 = config.health_probe
    if probe_s3 and config.enabled:
        if session is None:
            from coverage_wrapper.session import get_session

            session = get_session()
        probe = session.probe_bucket()
        result["s3_probe"] = probe
        if not probe.get("writable"):
            result["problems"].append(f"the bucket does not accept writes: {probe.get('error')}")
    last = result["last_flush"]
    degraded = bool(result["problems"]) or (last is not None and last["outcome"] == "failed")
    result["status"] = "degraded" if degraded else "healthy"
    return {"status": result.pop("status"), **result}
