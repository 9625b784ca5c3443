"""Run each invocation of a handler inside a measured scope.

:func:`measured_handler` wraps a handler in a function of the same kind
(plain, ``async def``, generator or async generator), so that the measured
scope spans what the handler's body really runs: the call, the awaited
coroutine, or the whole iteration of a generator. The handler's own result,
exception, yielded values and ``StopIteration`` value pass through
untouched: the session's calls before and after never raise, and nothing
here catches what the handler raises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from coverage_wrapper.session import ContainerSession, Invocation

#: Returns the session to measure with, or None to call the handler unmeasured.
SessionSource = Callable[[], "ContainerSession | None"]


class _Opened(NamedTuple):
    session: ContainerSession
    invocation: Invocation
    context: Any


def measured_handler(handler: Callable[..., Any], session: SessionSource) -> Callable[..., Any]:
    """Wrap ``handler`` in a function of the same kind that measures each invocation.

    ``session()`` is asked when an invocation starts (for a coroutine or a
    generator: when it starts running); None runs the handler unmeasured.
    The scope ends when the call returns or raises, the coroutine finishes,
    or the generator finishes, raises or is closed. ``send()``, ``throw()``
    and ``close()`` (``asend()``, ``athrow()``, ``aclose()``) reach the
    handler's generator as without the wrapper.

    The wrapper keeps the handler's name, docstring and signature
    (:func:`functools.wraps`), and ``inspect.iscoroutinefunction``,
    ``isgeneratorfunction`` and ``isasyncgenfunction`` answer for it as for
    the handler. As with any ``async def`` or generator function, arguments
    the handler does not accept raise their ``TypeError`` when the wrapper
    starts running rather than at the call.
    """
    if inspect.isasyncgenfunction(handler):

        @functools.wraps(handler)
        async def async_generator_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            opened = _open(session, args, kwargs)
            try:
                # Async generators have no ``yield from``: pass each value
                # sent, exception thrown and close on by hand.
                inner = handler(*args, **kwargs)
                try:
                    value = await inner.__anext__()
                except StopAsyncIteration:
                    return
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        # The handler's own cleanup (finally, async with) runs.
                        await inner.aclose()
                        raise
                    except BaseException as thrown:  # noqa: BLE001 - every athrow() goes on
                        # Arriving here added this frame to the traceback; left
                        # there it would be the innermost frame, not the handler's.
                        trace = thrown.__traceback__
                        thrown.with_traceback(trace.tb_next if trace is not None else None)
                        try:
                            value = await inner.athrow(thrown)
                        except StopAsyncIteration:
                            return
                    else:
                        try:
                            value = await inner.asend(sent)
                        except StopAsyncIteration:
                            return
            finally:
                _close(opened)

        return async_generator_wrapper

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def generator_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            opened = _open(session, args, kwargs)
            try:
                return (yield from handler(*args, **kwargs))
            finally:
                _close(opened)

        return generator_wrapper

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
            opened = _open(session, args, kwargs)
            try:
                return await handler(*args, **kwargs)
            finally:
                _close(opened)

        return coroutine_wrapper

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opened = _open(session, args, kwargs)
        try:
            return handler(*args, **kwargs)
        finally:
            _close(opened)

    return wrapper


def _open(session: SessionSource, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Opened | None:
    current = session()
    if current is None:
        return None
    context = context_argument(args, kwargs)
    return _Opened(
        current, current.begin_invocation(context, event_argument(args, kwargs)), context
    )


def _close(opened: _Opened | None) -> None:
    if opened is not None:
        opened.session.end_invocation(opened.invocation, opened.context)


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
