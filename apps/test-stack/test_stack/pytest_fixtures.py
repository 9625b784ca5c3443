"""A pytest fixture for the local runtime: ``local_lambda(functions, **options)``.

Import it into a ``conftest.py`` (``from test_stack.pytest_fixtures import
local_lambda``). Every pool it made is closed at the end of the test, and the
test fails if any process of those pools outlived the close.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from test_stack.functions import LambdaFunction
from test_stack.pool import LocalLambda

PoolFactory = Callable[..., LocalLambda]


@pytest.fixture
def local_lambda() -> Iterator[PoolFactory]:
    """Make local Lambda pools: ``local_lambda([function, ...], idle_timeout=None, ...)``."""
    pools: list[LocalLambda] = []

    def make(functions: Iterable[LambdaFunction], **options: Any) -> LocalLambda:
        pool = LocalLambda(functions, **options)
        pools.append(pool)
        return pool

    yield make
    pids = [pid for pool in pools for container in pool.containers() for pid in container.pids]
    for pool in pools:
        pool.close()
    survivors = [pid for pid in pids if _running(pid)]
    assert not survivors, f"processes of the local runtime still run after close: {survivors}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
