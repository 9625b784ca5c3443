"""``async def``, generator and async generator handlers: same kind, body measured, semantics kept.

Both entry points that wrap a handler (the zero-code handler and the
decorator) return a wrapper of the handler's kind whose measured scope spans
the awaited body or the whole iteration. The line sets are exact.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import lambda_context, union_lines, uploads, write_module
from tests.wrapper.test_zero_code import load_zero_code

KINDS = """\
import asyncio


async def coroutine(event, context):
    await asyncio.sleep(0)
    if event.get("fail"):
        raise ValueError(event["fail"])
    return event["n"] * 2


def generator(event, context):
    total = 0
    for n in range(event["n"]):
        received = yield n
        if received:
            total += received
    return total


async def async_generator(event, context):
    for n in range(event["n"]):
        await asyncio.sleep(0)
        received = yield n
        if received:
            yield received * 10
"""

#: Lines run when ``kinds`` is imported: the import and the three ``def`` lines.
KINDS_IMPORT_LINES = {1, 4, 11, 20}


def drive_coroutine(handler: Callable[..., Any]) -> Any:
    return asyncio.run(handler({"n": 21}, lambda_context()))


def drive_generator(handler: Callable[..., Any]) -> Any:
    iterator = handler({"n": 3}, lambda_context())
    seen = [next(iterator), iterator.send(5), iterator.send(None)]
    with pytest.raises(StopIteration) as stopped:
        iterator.send(7)
    return seen, stopped.value.value


def drive_async_generator(handler: Callable[..., Any]) -> Any:
    async def run() -> list[Any]:
        iterator = handler({"n": 2}, lambda_context())
        seen = [await iterator.__anext__(), await iterator.asend(3), await iterator.asend(None)]
        with pytest.raises(StopAsyncIteration):
            await iterator.asend(None)
        return seen

    return asyncio.run(run())


#: attribute, how to tell its kind, how to drive it, its result, the body lines it runs.
CASES = [
    pytest.param(
        "coroutine", inspect.iscoroutinefunction, drive_coroutine, 42, {5, 6, 8}, id="async-def"
    ),
    pytest.param(
        "generator",
        inspect.isgeneratorfunction,
        drive_generator,
        ([0, 1, 2], 12),
        {12, 13, 14, 15, 16, 17},
        id="generator",
    ),
    pytest.param(
        "async_generator",
        inspect.isasyncgenfunction,
        drive_async_generator,
        [0, 30, 1],
        {21, 22, 23, 24, 25},
        id="async-generator",
    ),
]


@pytest.mark.parametrize(("attribute", "is_kind", "drive", "result", "body"), CASES)
def test_zero_code_keeps_the_kind_and_measures_the_body(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attribute: str,
    is_kind: Callable[[Any], bool],
    drive: Callable[[Callable[..., Any]], Any],
    result: Any,
    body: set[int],
) -> None:
    write_module(task_root, "kinds.py", KINDS)
    entry = load_zero_code(monkeypatch, f"kinds.{attribute}")
    assert is_kind(entry.handler)
    assert entry.handler.__name__ == attribute
    assert drive(entry.handler) == result
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"kinds.py": KINDS_IMPORT_LINES | body}


@pytest.mark.parametrize(("attribute", "is_kind", "drive", "result", "body"), CASES)
def test_decorator_keeps_the_kind_and_measures_the_body(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    attribute: str,
    is_kind: Callable[[Any], bool],
    drive: Callable[[Callable[..., Any]], Any],
    result: Any,
    body: set[int],
) -> None:
    write_module(task_root, "kinds.py", KINDS)
    import kinds  # type: ignore[import-not-found]

    wrapped = coverage_handler(getattr(kinds, attribute))
    assert is_kind(wrapped)
    assert drive(wrapped) == result
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"kinds.py": body}


@pytest.mark.parametrize(("attribute", "is_kind", "drive", "result", "body"), CASES)
def test_disabled_decorator_keeps_the_kind_and_the_result(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attribute: str,
    is_kind: Callable[[Any], bool],
    drive: Callable[[Callable[..., Any]], Any],
    result: Any,
    body: set[int],
) -> None:
    monkeypatch.setenv("COVERAGE_ENABLED", "false")
    write_module(task_root, "kinds.py", KINDS)
    import kinds

    wrapped = coverage_handler(getattr(kinds, attribute))
    assert is_kind(wrapped)
    assert drive(wrapped) == result
    assert current_session() is None
    assert uploads(s3, bucket, tmp_path) == []


def _measuring() -> bool:
    session = current_session()
    return session is not None and session.measurement is not None and session.measurement.active


def test_a_generator_is_measured_until_it_is_closed_and_its_cleanup_runs(
    task_root: Path,
) -> None:
    record: list[str] = []

    def handler(event: Any, context: Any) -> Any:
        try:
            yield 1
            yield 2
        except GeneratorExit:
            record.append("closed")
            raise
        finally:
            record.append("cleanup")

    iterator = coverage_handler(handler)({}, lambda_context())
    assert not _measuring()
    assert next(iterator) == 1
    assert _measuring()
    iterator.close()
    assert record == ["closed", "cleanup"]
    assert not _measuring()


def test_throw_reaches_the_generator_and_its_answer_comes_back(task_root: Path) -> None:
    def handler(event: Any, context: Any) -> Any:
        while True:
            try:
                yield "ready"
            except KeyError as exc:
                yield f"handled {exc.args[0]}"

    iterator = coverage_handler(handler)({}, lambda_context())
    assert next(iterator) == "ready"
    assert iterator.throw(KeyError("k")) == "handled k"
    error = ValueError("not handled")
    with pytest.raises(ValueError, match=r"^not handled$") as caught:
        iterator.throw(error)
    assert caught.value is error
    assert not _measuring()


def test_an_async_generator_passes_athrow_and_aclose_on(task_root: Path) -> None:
    record: list[str] = []

    async def handler(event: Any, context: Any) -> Any:
        try:
            while True:
                try:
                    yield "ready"
                except KeyError as exc:
                    yield f"handled {exc.args[0]}"
        except GeneratorExit:
            record.append("closed")
            raise
        finally:
            record.append("cleanup")

    async def run() -> list[Any]:
        iterator = coverage_handler(handler)({}, lambda_context())
        seen = [await iterator.__anext__(), await iterator.athrow(KeyError("k"))]
        measuring = _measuring()
        await iterator.aclose()
        return [*seen, measuring]

    assert asyncio.run(run()) == ["ready", "handled k", True]
    assert record == ["closed", "cleanup"]
    assert not _measuring()


def test_an_async_generator_raising_keeps_the_exception_and_its_chain(task_root: Path) -> None:
    async def handler(event: Any, context: Any) -> Any:
        yield 1
        try:
            int("seven")
        except ValueError as exc:
            raise RuntimeError("lookup failed", 7) from exc

    async def run() -> list[Any]:
        return [item async for item in coverage_handler(handler)({}, lambda_context())]

    with pytest.raises(RuntimeError) as caught:
        asyncio.run(run())
    assert caught.value.args == ("lookup failed", 7)
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.__suppress_context__
    assert caught.traceback[-1].name == "handler"
    assert not _measuring()


def test_an_exception_thrown_into_an_async_generator_ends_in_the_handlers_frame(
    task_root: Path,
) -> None:
    async def handler(event: Any, context: Any) -> Any:
        yield "ready"

    async def run(iterator: Any) -> None:
        await iterator.__anext__()
        await iterator.athrow(KeyError("stop"))

    innermost = []
    for candidate in (handler, coverage_handler(handler)):
        with pytest.raises(KeyError) as caught:
            asyncio.run(run(candidate({}, lambda_context())))
        innermost.append((caught.traceback[-1].name, caught.traceback[-1].lineno))
    # The same frame (the handler's ``yield``) with and without the wrapper.
    assert innermost[0] == innermost[1]
    assert innermost[1][0] == "handler"
