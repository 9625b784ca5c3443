"""Zero-code entry point: set the function's handler to ``coverage_wrapper.handler.handler``.

Put your own handler in ``COVERAGE_ORIGINAL_HANDLER`` (``app.handler``,
``pkg.mod.handler`` or ``dir/mod.handler``, exactly as Lambda takes it).
Importing this module starts coverage *before* it imports your module, so
the module-level lines your function runs at init (imports, ``def`` and
``class`` statements, constants) are measured too; the decorator cannot see
those. A setting that names nothing importable fails init the way Lambda
fails for a bad handler (``Runtime.ImportModuleError``), naming the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coverage_wrapper.config import environment_config
from coverage_wrapper.handler_loader import load_handler
from coverage_wrapper.invocation import run_invocation
from coverage_wrapper.session import ContainerSession, get_session


def _initialise() -> tuple[ContainerSession | None, Callable[..., Any]]:
    config = environment_config()
    if not config.enabled:
        return None, load_handler(config.original_handler)
    session = get_session(config)
    entered = session.enter_scope()
    try:
        return session, load_handler(config.original_handler)
    finally:
        # Init's lines stay in memory; the first invocation's flush sends them.
        session.exit_scope(entered)


_session, _original = _initialise()


def handler(event: Any, context: Any) -> Any:
    """Run the original handler measured, then flush by policy."""
    if _session is None:
        return _original(event, context)
    return run_invocation(_session, context, lambda: _original(event, context))
