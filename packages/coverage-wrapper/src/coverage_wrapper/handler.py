"""Zero-code entry point: set the function's handler to ``coverage_wrapper.handler.handler``.

Put your own handler in ``COVERAGE_ORIGINAL_HANDLER`` (``app.handler``,
``pkg.mod.handler`` or ``dir/mod.handler``, exactly as Lambda takes it).
Importing this module starts coverage *before* it imports your module, so
the module-level lines your function runs at init (imports, ``def`` and
``class`` statements, constants) are measured too; the decorator cannot see
those. A setting that names nothing importable fails init the way Lambda
fails for a bad handler (``Runtime.ImportModuleError``), naming the value.

The handler is wrapped in a function of the same kind: an ``async def``
handler stays a coroutine function measured while it is awaited, a generator
(or async generator) handler stays one, measured over its iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coverage_wrapper.config import environment_config
from coverage_wrapper.handler_loader import load_handler

Handler = Callable[[Any, Any], Any]


def _initialise() -> Handler:
    config = environment_config()
    if not config.enabled:
        # Disabled: the runtime calls the original itself; nothing of the
        # measurement machinery is even imported.
        return load_handler(config.original_handler)
    from coverage_wrapper.attribution import INIT
    from coverage_wrapper.invocation import measured_handler
    from coverage_wrapper.session import get_session

    session = get_session(config)
    # Before the function's code runs: a SIGTERM handler it installs takes
    # over from ours (the save still runs), and the extension knows to wait
    # for each invocation's end.
    session.start_extension_handoff(attach=True)
    entered = session.enter_scope(INIT)
    try:
        original = load_handler(config.original_handler)
    finally:
        # Init's lines stay in memory; the first invocation's flush sends them.
        session.exit_scope(entered)

    # Of the original's kind: an ``async def`` or generator handler's body
    # runs when it is awaited or iterated, and is measured then.
    return measured_handler(original, lambda: session)


#: What the function's handler setting names. It runs the original handler
#: measured and flushes by policy; with ``COVERAGE_ENABLED=false`` it *is*
#: the original handler.
handler: Handler = _initialise()
