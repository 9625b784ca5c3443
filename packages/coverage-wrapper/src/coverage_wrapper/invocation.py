"""Run one invocation of a handler inside a measured scope.

The handler's own result and exception pass through untouched: the session's
calls before and after never raise, and nothing here catches what the
handler raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from coverage_wrapper.session import ContainerSession

R = TypeVar("R")


def run_invocation(
    session: ContainerSession, context: Any, call: Callable[[], R], event: Any = None
) -> R:
    """Run ``call()`` (the handler with its arguments) measured, then flush by policy."""
    invocation = session.begin_invocation(context, event)
    try:
        return call()
    finally:
        session.end_invocation(invocation, context)


async def run_invocation_async(
    session: ContainerSession, context: Any, call: Callable[[], Awaitable[R]], event: Any = None
) -> R:
    """Await ``call()`` measured, then flush by policy."""
    invocation = session.begin_invocation(context, event)
    try:
        return await call()
    finally:
        session.end_invocation(invocation, context)


def context_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The Lambda context among a handler's arguments (second positional, or ``context=``)."""
    if len(args) > 1:
        return args[1]
    return kwargs.get("context")


def event_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The Lambda event among a handler's arguments (first positional, or ``event=``)."""
    if args:
        return args[0]
    return kwargs.get("event")
