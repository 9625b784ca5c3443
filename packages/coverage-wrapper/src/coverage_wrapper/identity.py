"""Who is measuring: function, version, container and process.

The container id is created on first use after init, never at import: a
SnapStart restore clones everything that init created into many execution
environments, and ids made then would collide in S3 keys. A fork gets its own
pid, which is part of every key as well.
"""

from __future__ import annotations

import os
import threading
import uuid

_lock = threading.Lock()
_container_id: str | None = None
_container_pid: int | None = None


def container_id() -> str:
    """A random id for this execution environment and process, made on first use."""
    global _container_id, _container_pid  # noqa: PLW0603 - one id per process by design
    pid = os.getpid()
    with _lock:
        if _container_id is None or _container_pid != pid:
            _container_id = uuid.uuid4().hex[:16]
            _container_pid = pid
        return _container_id


def reset_container_id() -> None:
    """Forget the id so that the next call makes a new one (after a snapshot restore)."""
    global _container_id, _container_pid  # noqa: PLW0603
    with _lock:
        _container_id = None
        _container_pid = None


def context_label(function_name: str, function_version: str) -> str:
    """The static coverage context that marks every line with the function that ran it."""
    return f"{function_name}@{function_version}"


def forget_container_id_after_snapshot_restore() -> None:
    """Under SnapStart, make a new container id in every restored environment.

    The id is made lazily, after init, so a snapshot normally holds none; this
    covers code that flushed during init. Outside SnapStart it does nothing.
    """
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "snap-start":
        return
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return
    register_after_restore(reset_container_id)
