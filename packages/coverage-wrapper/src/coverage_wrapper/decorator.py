"""``@coverage_handler``: measure a handler by decorating it.

The decorator starts measuring when the handler is called, so the handler
module's import-time lines (imports, ``def`` lines, constants) ran before it
could see them and show as missed. To measure those too, use the zero-code
handler (:mod:`coverage_wrapper.handler`) instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from coverage_wrapper.config import OPTION_NAMES, environment_config

if TYPE_CHECKING:
    from coverage_wrapper.session import ContainerSession

F = TypeVar("F", bound=Callable[..., Any])


@overload
def coverage_handler(handler: F, /) -> F: ...


@overload
def coverage_handler(
    handler: None = None,
    /,
    *,
    enabled: bool | None = ...,
    s3_bucket: str | None = ...,
    s3_prefix: str | None = ...,
    upload_timeout: float | None = ...,
    include: list[str] | tuple[str, ...] | str | None = ...,
    exclude: list[str] | tuple[str, ...] | str | None = ...,
    branch: bool | None = ...,
    sample_rate: float | None = ...,
    key_template: str | None = ...,
) -> Callable[[F], F]: ...


def coverage_handler(handler: Any = None, /, **options: Any) -> Any:
    """Measure a Lambda handler's code coverage and upload it after each invocation.

    Use it bare (``@coverage_handler``) or with keyword options that win over
    the environment: ``enabled``, ``s3_bucket``, ``s3_prefix``,
    ``upload_timeout``, ``include``, ``exclude``, ``branch``, ``sample_rate``,
    ``key_template``. The wrapped handler keeps its name, docstring and
    signature, and stays the same kind of function: ``async def`` handlers
    stay coroutine functions measured while awaited, generator (and async
    generator) handlers stay generators measured over their iteration. With
    ``COVERAGE_ENABLED=false`` (or ``enabled=False``) it calls the handler
    and does nothing else.
    """
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(
            f"coverage_handler() got unknown option(s) {sorted(unknown)}; "
            f"valid options are {sorted(OPTION_NAMES)}"
        )
    explicit = {k: v for k, v in options.items() if v is not None}
    if handler is None:
        return functools.partial(_wrap, options=explicit)
    if not callable(handler):
        raise TypeError(
            f"coverage_handler() expects a function, got {type(handler).__name__}; "
            "use @coverage_handler or @coverage_handler(option=value)"
        )
    return _wrap(handler, options=explicit)


def _wrap(handler: F, *, options: dict[str, Any]) -> F:
    resolved: list[ContainerSession | None] = []

    def session() -> ContainerSession | None:
        # Resolved at the first call, once: the environment is read then, and a
        # disabled wrapper never creates a session or imports coverage.py.
        if not resolved:
            config = environment_config().with_options(options)
            if config.enabled:
                from coverage_wrapper.session import get_session

                resolved.append(get_session(config))
            else:
                resolved.append(None)
        return resolved[0]

    from coverage_wrapper.invocation import measured_handler

    return cast(F, measured_handler(handler, session))
