"""Find the function's real handler exactly as the Lambda Python runtime does.

A handler setting is ``module.function`` where the module may be dotted
(``pkg.mod.fn``) or a path relative to the task root (``dir/mod.fn``). The
runtime splits at the last dot and imports the module with ``/`` read as
``.``; so do we, once, at init.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from coverage_wrapper.constants import ENV_ORIGINAL_HANDLER, ZERO_CODE_HANDLER
from coverage_wrapper.errors import HandlerConfigurationError


def parse_handler(spec: str) -> tuple[str, str]:
    """Split a handler setting into its module name and attribute name."""
    module, _, attribute = spec.strip().rpartition(".")
    if not module or not attribute or module.endswith("/") or "//" in module:
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER}={spec!r} is not a handler: write it as the function's "
            "handler setting, e.g. 'app.handler', 'pkg.module.handler' or 'dir/module.handler'"
        )
    return module.replace("/", "."), attribute


def load_handler(spec: str | None) -> Callable[..., Any]:
    """Import the module of ``spec`` and return its handler."""
    if not spec:
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER} is not set: the function's handler is "
            f"{ZERO_CODE_HANDLER!r}, so set {ENV_ORIGINAL_HANDLER} to your own handler "
            "(e.g. 'app.handler')"
        )
    module_name, attribute = parse_handler(spec)
    if module_name == ZERO_CODE_HANDLER.rpartition(".")[0]:
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER}={spec!r} names the wrapper itself: set it to your own handler"
        )
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER}={spec!r}: module {module_name!r} has the name of a "
            "built-in module; rename your module"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing handler module is a configuration error; a module that
        # fails on one of its own imports raises as it would without us.
        if (
            exc.name is not None
            and module_name.startswith(exc.name)
            and (module_name == exc.name or module_name.startswith(exc.name + "."))
        ):
            raise HandlerConfigurationError(
                f"{ENV_ORIGINAL_HANDLER}={spec!r}: no module named {module_name!r} on the "
                "path; check the spelling and that the file is in the deployment package"
            ) from exc
        raise
    try:
        handler = getattr(module, attribute)
    except AttributeError:
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER}={spec!r}: module {module_name!r} has no attribute "
            f"{attribute!r}; check the function name"
        ) from None
    if not callable(handler):
        raise HandlerConfigurationError(
            f"{ENV_ORIGINAL_HANDLER}={spec!r}: {module_name}.{attribute} is not callable"
        )
    return handler  # type: ignore[no-any-return]
