"""``CoverageContext``: measure one block of code.

Used alone, it starts measuring on entry, stops on exit and flushes the data
(one snapshot per outermost block). Nested inside a decorated handler, the
zero-code handler, or another ``CoverageContext`` (in any thread), it joins
the measurement already running: leaving it never stops the outer scope, and
the outer scope flushes once at its end.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from coverage_wrapper.config import OPTION_NAMES, environment_config

if TYPE_CHECKING:
    from coverage_wrapper.session import ContainerSession


class CoverageContext:
    """Context manager (``with`` and ``async with``) that measures its block.

    Accepts the same keyword options as :func:`coverage_handler`; ``context``
    is the Lambda context, if you have it, so that an upload respects the
    invocation's remaining time. Exceptions raised in the block propagate
    unchanged.
    """

    def __init__(self, *, context: Any = None, **options: Any) -> None:
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise TypeError(
                f"CoverageContext() got unknown option(s) {sorted(unknown)}; "
                f"valid options are {sorted(OPTION_NAMES)}"
            )
        self._options = {k: v for k, v in options.items() if v is not None}
        self._lambda_context = context
        # One instance may be entered by several threads, or re-entered: keep
        # what each entry opened on a per-thread stack.
        self._local = threading.local()

    def _stack(self) -> list[tuple[ContainerSession | None, bool]]:
        stack: list[tuple[ContainerSession | None, bool]] | None = getattr(
            self._local, "stack", None
        )
        if stack is None:
            stack = []
            self._local.stack = stack
        return stack

    def __enter__(self) -> CoverageContext:
        session: ContainerSession | None = None
        entered = False
        try:
            config = environment_config().with_options(self._options)
            if config.enabled:
                from coverage_wrapper.session import get_session

                session = get_session(config)
                entered = session.enter_scope()
        except Exception as exc:  # noqa: BLE001 - never break the code being measured
            _log_error("CoverageContext could not start", exc)
        self._stack().append((session, entered))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = self._stack()
        session, entered = stack.pop() if stack else (None, False)
        if session is None or not entered:
            return
        try:
            session.exit_scope(True)
            if session.measurement is not None and not session.measurement.active:
                with session.status.lock:
                    session.status.measured_blocks += 1
                    measured = session.status.measured_blocks
                session.flush_if_due(self._lambda_context, measured)
        except Exception as err:  # noqa: BLE001
            _log_error("CoverageContext could not finish", err)

    async def __aenter__(self) -> CoverageContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    @property
    def measuring(self) -> bool:
        """Whether this block is being measured (False when disabled or failed)."""
        stack = self._stack()
        return bool(stack) and stack[-1][1]


def _log_error(message: str, exc: Exception) -> None:
    from coverage_wrapper.logs import log

    log(logging.ERROR, message, error=str(exc))
