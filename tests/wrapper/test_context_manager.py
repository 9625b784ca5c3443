"""``CoverageContext``: one block measured; nesting joins, never loses lines."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import CoverageContext, coverage_handler
from coverage_wrapper.session import current_session
from tests.wrapper.conftest import lambda_context, union_lines, uploads, write_module

STEPS = """\
def setup():
    return "setup"


def business(n):
    if n > 1:
        return n * 2
    return n


def cleanup():
    return "cleanup"


def nested_handler(event, context):
    from coverage_wrapper import CoverageContext

    before = business(1)
    with CoverageContext():
        inner = business(5)
    after = cleanup()
    return [before, inner, after]
"""


def test_only_the_block_is_measured(task_root: Path, s3: Any, bucket: str, tmp_path: Path) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps  # type: ignore[import-not-found]

    steps.setup()
    with CoverageContext(context=lambda_context()) as block:
        assert block.measuring
        result = steps.business(5)
    steps.cleanup()
    assert result == 10
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"steps.py": {6, 7}}
    assert sys.gettrace() is None


def test_nested_in_a_decorated_handler_it_joins_and_loses_no_outer_line(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps

    handler = coverage_handler(steps.nested_handler)
    assert handler({}, lambda_context()) == [1, 10, "cleanup"]
    found = uploads(s3, bucket, tmp_path)
    # One flush, at the end of the handler, not one per inner block.
    assert len(found) == 1
    # Lines after the inner block (cleanup, return) are still measured.
    assert union_lines(found) == {"steps.py": {6, 7, 8, 12, 16, 18, 19, 20, 21, 22}}


def test_nested_contexts_in_one_thread(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps

    outer = CoverageContext()
    with outer:
        steps.setup()
        with CoverageContext():
            steps.business(1)
        # Leaving the inner block did not stop the outer one.
        assert current_session() is not None
        assert current_session().measurement.active  # type: ignore[union-attr]
        steps.cleanup()
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"steps.py": {2, 6, 8, 12}}
    assert sys.gettrace() is None


def test_the_same_instance_reentered_and_async_with(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps

    block = CoverageContext()
    with block:
        with block:
            steps.business(1)
        steps.business(3)

    async def run() -> str:
        async with CoverageContext():
            return str(steps.setup())

    assert asyncio.run(run()) == "setup"
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"steps.py": {2, 6, 7, 8}}


def test_threads_started_inside_a_block_are_measured_and_stop_with_it(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps

    results: list[Any] = []
    with CoverageContext():
        workers = [
            threading.Thread(target=lambda n=n: results.append(steps.business(n))) for n in (1, 4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    steps.cleanup()  # after the block: not measured, in any thread
    thread_after = threading.Thread(target=steps.setup)
    thread_after.start()
    thread_after.join()
    assert sorted(results) == [1, 8]
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"steps.py": {6, 7, 8}}


def test_concurrent_blocks_in_threads_stop_only_when_the_last_one_leaves(
    task_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    write_module(task_root, "steps.py", STEPS)
    import steps

    first_inside = threading.Event()
    second_left = threading.Event()
    errors: list[BaseException] = []

    def long_block() -> None:
        try:
            with CoverageContext():
                steps.business(1)
                first_inside.set()
                second_left.wait(10)
                # Still measured although another thread's block has ended.
                steps.business(9)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=long_block)
    worker.start()
    first_inside.wait(10)
    with CoverageContext():
        steps.setup()
    second_left.set()
    worker.join()
    assert errors == []
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"steps.py": {2, 6, 7, 8}}
    assert current_session().measurement.active is False  # type: ignore[union-attr]


def test_exceptions_in_the_block_propagate_unchanged(task_root: Path) -> None:
    empty: dict[str, int] = {}
    with pytest.raises(KeyError, match="'missing'"), CoverageContext():
        empty["missing"]
    assert sys.gettrace() is None


def test_unknown_option_is_a_type_error(task_root: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['brnch'\]"):
        CoverageContext(brnch=True)
