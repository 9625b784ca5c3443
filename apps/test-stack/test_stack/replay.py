"""Call a handler in this process with a list of events, as a plain test would.

``python -m test_stack.replay --handler calculator.app.handler --events events.json``
imports the handler the way the runtime does (``pkg.mod.fn`` or
``dir/mod.fn``, from the working directory), calls it once per event with a
Lambda context, and prints one JSON line per event: the answer, or the
error type the runtime would report. Run it under ``coverage run`` to get the
reference measurement the local runtime's results are compared with.
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


def replay(handler: Callable[[Any, Any], Any], events: Sequence[Any]) -> list[dict[str, Any]]:
    """Call ``handler`` with each event; record the answer or the error's type."""
    from awslambdaric.lambda_context import LambdaContext

    outcomes: list[dict[str, Any]] = []
    for event in events:
        context = LambdaContext(
            str(uuid.uuid4()),
            None,
            None,
            int(time.time() * 1000) + 30_000,
            "arn:aws:lambda:us-east-1:123456789012:function:replay",
        )
        # The runtime hands the handler a fresh copy of the event from JSON.
        copy = json.loads(json.dumps(event))
        try:
            outcomes.append({"answer": handler(copy, context)})
        except Exception as exc:  # noqa: BLE001 - report it as the runtime would
            outcomes.append({"errorType": type(exc).__name__})
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Replay the events file through the handler; print one JSON line per event."""
    parser = argparse.ArgumentParser(prog="python -m test_stack.replay")
    parser.add_argument("--handler", required=True, help="e.g. calculator.app.handler")
    parser.add_argument("--events", required=True, help="a JSON file holding a list of events")
    args = parser.parse_args(argv)
    with open(args.events) as source:
        events = json.load(source)
    sys.path.insert(0, os.getcwd())
    for outcome in replay(load_handler(args.handler), events):
        print(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
