"""Call a handler in this process with a list of events, as a plain test would.

``python -m test_stack.replay --handler calculator.app.handler --events events.json``
imports the handler the way the runtime does (``pkg.mod.fn`` or
``dir/mod.fn``, from the working directory), calls it once per event with a
Lambda context, and prints one JSON line per event: the answer, or the
error type the runtime would report. Run it under ``coverage run`` to get the
reference measurement the local runtime's results are compared with, or with
``--measure DATA_FILE`` to record each event's lines in a context of its own
(the ground truth of the reliability run).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """Import ``module.function`` (the module may be ``dir/mod``) and return the function."""
    module_name, _, attribute = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} is not 'module.function'")
    module = importlib.import_module(module_name.replace("/", "."))
    handler: Callable[[Any, Any], Any] = getattr(module, attribute)
    return handler


def replay(
    handler: Callable[[Any, Any], Any],
    events: Sequence[Any],
    before_each: Callable[[int], object] | None = None,
) -> list[dict[str, Any]]:
    """Call ``handler`` with each event; record the answer or the error's type.

    ``before_each(index)`` runs before each call (to switch a measurement's context).
    """
    from awslambdaric.lambda_context import LambdaContext

    outcomes: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        context = LambdaContext(
            str(uuid.uuid4()),
            None,
            None,
            int(time.time() * 1000) + 30_000,
            "arn:aws:lambda:us-east-1:123456789012:function:replay",
        )
        # The runtime hands the handler a fresh copy of the event from JSON.
        copy = json.loads(json.dumps(event))
        if before_each is not None:
            before_each(index)
        try:
            outcomes.append({"answer": handler(copy, context)})
        except Exception as exc:  # noqa: BLE001 - report it as the runtime would
            outcomes.append({"errorType": type(exc).__name__})
    return outcomes


#: The measurement context of the handler's import; each event's is ``event-<index>``.
INIT_CONTEXT = "init"


def event_context(index: int) -> str:
    """The measurement context of the event at ``index`` under ``--measure``."""
    return f"event-{index}"


def replay_measured(spec: str, events: Sequence[Any], data_file: str) -> list[dict[str, Any]]:
    """:func:`replay` under coverage.py, the lines of each event in a context of its own.

    The import runs in :data:`INIT_CONTEXT`. Contexts are exact on the ``ctrace``
    core only (DESIGN.md), so the caller sets ``COVERAGE_CORE=ctrace``.
    """
    import coverage

    cov = coverage.Coverage(
        data_file=data_file, include=[os.path.join(os.getcwd(), "*")], config_file=False
    )
    cov.start()
    try:
        cov.switch_context(INIT_CONTEXT)
        handler = load_handler(spec)
        outcomes = replay(handler, events, lambda i: cov.switch_context(event_context(i)))
    finally:
        cov.stop()
    cov.save()
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Replay the events file through the handler; print one JSON line per event."""
    parser = argparse.ArgumentParser(prog="python -m test_stack.replay")
    parser.add_argument("--handler", required=True, help="e.g. calculator.app.handler")
    parser.add_argument("--events", required=True, help="a JSON file holding a list of events")
    parser.add_argument(
        "--measure", metavar="DATA_FILE", help="measure each event in a context of its own"
    )
    args = parser.parse_args(argv)
    with open(args.events) as source:
        events = json.load(source)
    sys.path.insert(0, os.getcwd())
    if args.measure:
        outcomes = replay_measured(args.handler, events, args.measure)
    else:
        outcomes = replay(load_handler(args.handler), events)
    for outcome in outcomes:
        print(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
