"""Handler semantics as a property: the wrapper changes nothing a caller can observe.

Random handlers — plain, ``async def``, generators and async generators;
returning any JSON value (large ones too) or raising exceptions of many kinds
(built-in and custom classes, with arguments, chained with ``raise ... from``
or raised while handling another, ``SystemExit``, ``BaseException``
subclasses that are not ``Exception``); some starting threads; generators
driven with ``send()`` and stopped early with ``close()`` or ``throw()`` —
are run once bare and once wrapped, in every mode (decorator, context
manager, zero-code handler) and flush policy. Observed the same: the values
returned and yielded (the very same objects), the exception's type, args,
cause, context and innermost frame (the user's code), and what the handler
saw (values sent in, cleanup run).

The default suite runs a modest number of examples per mode and policy; set
``LAMBDA_COVERAGE_PROPERTY_EXAMPLES`` for a soak
(``LAMBDA_COVERAGE_PROPERTY_EXAMPLES=2000 pytest tests/wrapper/test_handler_semantics.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage_wrapper import CoverageContext, coverage_handler
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import lambda_context, write_module
from tests.wrapper.test_zero_code import load_zero_code

EXAMPLES = int(os.environ.get("LAMBDA_COVERAGE_PROPERTY_EXAMPLES", "16"))

#: Function code in the task root that every handler calls: measured, so the
#: flushes of each policy have data to write.
WORK = """\
def work(n):
    if n % 2:
        return n * 3
    return n


handler = None
"""


class OrderError(Exception):
    """A user's own exception class."""


class PaymentDeclinedError(OrderError):
    """A subclass, with state of its own."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.retryable = bool(args)


class Cancelled(BaseException):
    """Like ``KeyboardInterrupt``: a ``BaseException`` that is not an ``Exception``."""


class Thrown(Exception):
    """What the caller throws into a generator it stops early."""


ERROR_CLASSES: list[type[BaseException]] = [
    ValueError,
    KeyError,
    RuntimeError,
    StopIteration,
    OrderError,
    PaymentDeclinedError,
    SystemExit,
    Cancelled,
]

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
large_values = st.one_of(
    st.integers(0, 3_000_000).map(lambda n: "x" * n),
    st.integers(0, 100_000).map(lambda n: list(range(n))),
    st.integers(0, 20_000).map(lambda n: {f"key-{i}": [i, str(i), None] for i in range(n)}),
)


@dataclass(frozen=True)
class ErrorRecipe:
    """How to raise a fresh exception: its class, args and how it is chained."""

    cls: type[BaseException]
    args: tuple[Any, ...]
    chain: str  # "none", "from", "from-none" or "context"
    cause_args: tuple[Any, ...]


@dataclass(frozen=True)
class Spec:
    """One random handler and how its caller drives it."""

    kind: str  # "plain", "coroutine", "generator" or "async-generator"
    value: Any
    error: ErrorRecipe | None
    items: tuple[Any, ...]
    thread: str  # "none", "joined" or "left-running"
    consumer: str  # generators: "exhaust", "close" or "throw"
    stop_after: int


error_recipes = st.builds(
    ErrorRecipe,
    cls=st.sampled_from(ERROR_CLASSES),
    args=st.lists(json_scalars, max_size=3).map(tuple),
    chain=st.sampled_from(["none", "from", "from-none", "context"]),
    cause_args=st.lists(json_scalars, max_size=2).map(tuple),
)
specs = st.builds(
    Spec,
    kind=st.sampled_from(["plain", "coroutine", "generator", "async-generator"]),
    value=json_values | large_values,
    error=st.none() | error_recipes,
    items=st.lists(json_values, max_size=4).map(tuple),
    thread=st.sampled_from(["none", "joined", "left-running"]),
    consumer=st.sampled_from(["exhaust", "close", "throw"]),
    stop_after=st.integers(1, 3),
)

Block = Callable[[Any], Any]


def bare_block(context: Any) -> Any:
    """What a handler's body runs in without a ``CoverageContext``."""
    return contextlib.nullcontext()


def measured_block(context: Any) -> Any:
    """The context manager mode: the handler's body in ``CoverageContext``."""
    return CoverageContext(context=context)


def build(spec: Spec, app: ModuleType, block: Block) -> tuple[Callable[..., Any], list[Any]]:
    """A fresh handler of ``spec`` and the list where it records what it saw."""
    seen: list[Any] = []

    def finish(n: int) -> Any:
        if spec.thread == "joined":
            worker = threading.Thread(target=lambda: seen.append(app.work(n)))
            worker.start()
            worker.join()
        elif spec.thread == "left-running":
            threading.Thread(target=app.work, args=(n,), daemon=True).start()
        else:
            seen.append(app.work(n))
        if spec.error is not None:
            raise_error(spec.error)
        return spec.value

    if spec.kind == "plain":

        def plain(event: Any, context: Any) -> Any:
            with block(context):
                return finish(len(event))

        return plain, seen

    if spec.kind == "coroutine":

        async def coroutine(event: Any, context: Any) -> Any:
            with block(context):
                await asyncio.sleep(0)
                return finish(len(event))

        return coroutine, seen

    if spec.kind == "generator":

        def generator(event: Any, context: Any) -> Any:
            with block(context):
                try:
                    for item in spec.items:
                        seen.append((yield item))
                finally:
                    seen.append("cleanup")
                return finish(len(event))

        return generator, seen

    async def async_generator(event: Any, context: Any) -> Any:
        with block(context):
            try:
                for item in spec.items:
                    await asyncio.sleep(0)
                    seen.append((yield item))
            finally:
                seen.append("cleanup")
            finish(len(event))

    return async_generator, seen


def raise_error(recipe: ErrorRecipe) -> None:
    """Raise a fresh exception of ``recipe`` from this frame (the user's code)."""
    error = recipe.cls(*recipe.args)
    if recipe.chain == "from":
        raise error from OrderError(*recipe.cause_args)
    if recipe.chain == "from-none":
        raise error from None
    if recipe.chain == "context":
        try:
            fail_lookup(recipe.cause_args)
        except KeyError:
            raise error  # noqa: B904 - the implicit context is what is tested
    raise error


def fail_lookup(args: tuple[Any, ...]) -> None:
    """The error being handled when the recipe's own is raised."""
    raise KeyError(*args)


@dataclass
class Observed:
    """Everything a caller can see of one run."""

    yielded: list[Any]
    returned: Any
    error: tuple[Any, ...] | None
    seen: list[Any]


#: The handlers' own functions (the callers that drive them are not).
USER_CODE = {
    (__file__, name)
    for name in ("plain", "coroutine", "generator", "async_generator", "raise_error")
}
#: Where the wrapper's own frames come from.
WRAPPER_CODE = str(Path(inspect.getfile(coverage_handler)).parent)


def describe(error: BaseException) -> tuple[Any, ...]:
    """An exception's type, args, chain and traceback, comparable with ``==``.

    The traceback is its frames without the wrapper's own, then its innermost
    frame: the wrapper may only add frames of its own, and the innermost is
    the user's code wherever it is without the wrapper. (One case where the
    user's frame is not the innermost even bare: a coroutine or generator
    that raises ``StopIteration`` gets it replaced by a ``RuntimeError``
    raised in the frame that resumed it, asyncio's, or the wrapper's.)
    """
    frames: list[tuple[str, str, int]] = []
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, code.co_name, tb.tb_lineno))
        tb = tb.tb_next

    def link(other: BaseException | None) -> tuple[Any, ...] | None:
        return None if other is None else (type(other), other.args)

    return (
        type(error),
        error.args,
        link(error.__cause__),
        link(error.__context__),
        error.__suppress_context__,
        [frame for frame in frames if not frame[0].startswith(WRAPPER_CODE)],
        frames[-1] if frames else None,
    )


def drive(spec: Spec, handler: Callable[..., Any], seen: list[Any]) -> Observed:
    """Call ``handler`` as a framework would for its kind; record what comes out."""
    event = {"order": 1}
    yielded: list[Any] = []
    try:
        if spec.kind == "plain":
            returned = handler(event, lambda_context())
        elif spec.kind == "coroutine":
            returned = asyncio.run(handler(event, lambda_context()))
        elif spec.kind == "generator":
            returned = drive_generator(spec, handler(event, lambda_context()), yielded)
        else:
            returned = asyncio.run(
                drive_async_generator(spec, handler(event, lambda_context()), yielded)
            )
    except BaseException as error:  # every outcome is observed
        return Observed(yielded, None, describe(error), seen)
    return Observed(yielded, returned, None, seen)


def drive_generator(spec: Spec, iterator: Any, yielded: list[Any]) -> Any:
    try:
        item = next(iterator)
        while True:
            yielded.append(item)
            if spec.consumer != "exhaust" and len(yielded) >= spec.stop_after:
                if spec.consumer == "close":
                    iterator.close()
                    return "closed"
                iterator.throw(Thrown("stop", len(yielded)))
            item = iterator.send(("sent", len(yielded)))
    except StopIteration as stop:
        return stop.value


async def drive_async_generator(spec: Spec, iterator: Any, yielded: list[Any]) -> Any:
    try:
        item = await iterator.__anext__()
        while True:
            yielded.append(item)
            if spec.consumer != "exhaust" and len(yielded) >= spec.stop_after:
                if spec.consumer == "close":
                    await iterator.aclose()
                    return "closed"
                await iterator.athrow(Thrown("stop", len(yielded)))
            item = await iterator.asend(("sent", len(yielded)))
    except StopAsyncIteration:
        return "finished"


def assert_same(spec: Spec, bare: Observed, wrapped: Observed) -> None:
    if bare.error is not None and wrapped.error is not None:
        innermost = bare.error[-1]
        if innermost is not None and innermost[:2] in USER_CODE:
            # The user's frame is the innermost one with the wrapper as well.
            assert wrapped.error[-1] == innermost
        # The innermost frame of a StopIteration turned RuntimeError is the
        # resuming one (asyncio's bare, the wrapper's wrapped): compared without.
        bare.error = bare.error[:-1]
        wrapped.error = wrapped.error[:-1]
    assert wrapped == bare
    # The very objects the handler produced, not copies.
    if bare.error is None and spec.kind in ("plain", "coroutine"):
        assert bare.returned is spec.value
        assert wrapped.returned is spec.value
    assert wrapped.returned is bare.returned
    assert all(a is b for a, b in zip(wrapped.yielded, spec.items, strict=False))


MODES = ["decorator", "context-manager", "zero-code"]
POLICIES = ["adaptive", "invocation", "interval", "shutdown"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("mode", MODES)
def test_a_wrapped_handler_behaves_as_the_bare_one(
    task_root: Path, bucket: str, monkeypatch: pytest.MonkeyPatch, mode: str, policy: str
) -> None:
    monkeypatch.setenv("COVERAGE_FLUSH_POLICY", policy)
    # Short enough that interval flushes happen during the test.
    monkeypatch.setenv("COVERAGE_FLUSH_INTERVAL", "0.05")
    write_module(task_root, "semantics_app.py", WORK)
    import semantics_app  # type: ignore[import-not-found]

    def wrap(spec: Spec) -> tuple[Callable[..., Any], list[Any]]:
        if mode == "context-manager":
            return build(spec, semantics_app, measured_block)
        handler, seen = build(spec, semantics_app, bare_block)
        if mode == "decorator":
            return coverage_handler(handler), seen
        semantics_app.handler = handler
        return load_zero_code(monkeypatch, "semantics_app.handler").handler, seen

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(spec=specs)
    def same_result(spec: Spec) -> None:
        bare = drive(spec, *build(spec, semantics_app, bare_block))
        wrapped_handler, seen = wrap(spec)
        assert kind_of(wrapped_handler) == spec.kind
        wrapped = drive(spec, wrapped_handler, seen)
        assert_same(spec, bare, wrapped)

    same_result()
    session = current_session()
    assert session is not None
    assert session.status.invocations + session.status.measured_blocks > 0
    # No scope is left open: the process is not measuring between invocations.
    assert session.measurement is not None
    assert not session.measurement.active
    assert sys.gettrace() is None


def kind_of(handler: Callable[..., Any]) -> str:
    if inspect.isasyncgenfunction(handler):
        return "async-generator"
    if inspect.isgeneratorfunction(handler):
        return "generator"
    if inspect.iscoroutinefunction(handler):
        return "coroutine"
    return "plain"
