"""The events the load test sends: every operation, branch and error path of the stack.

One iteration of the load test sends each scenario once (or ``--count``
times). Each scenario says what a correct answer is: an ``errorType`` the
function must fail with, or the ``statusCode`` of its answer, so expected
errors are told apart from real failures. Random operations carry a seed, so
the same scenarios always take the same branches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from test_stack.invocations import InvokeResult


@dataclass(frozen=True)
class Scenario:
    """One event for one function, and what a correct answer looks like."""

    function: str
    name: str
    event: Any
    #: The ``errorType`` the invoke must fail with (``None``: it must not fail).
    expected_error: str | None = None
    #: The ``statusCode`` a successful answer must carry, when it carries one.
    expected_status: int | None = 200

    def problem(self, result: InvokeResult) -> str | None:
        """Why ``result`` is not what this scenario expects, or ``None`` if it is."""
        if self.expected_error is not None:
            if result.error_type == self.expected_error:
                return None
            return f"expected {self.expected_error}, got {result.error_type or 'success'}"
        if result.error_type is not None:
            return f"unexpected {result.error_type}: {_error_message(result.payload)}"
        if self.expected_status is None:
            return None
        status = _status_code(result.payload)
        if status != self.expected_status:
            return f"expected statusCode {self.expected_status}, got {status}"
        return None


def _status_code(payload: bytes) -> object:
    try:
        answer = json.loads(payload)
    except ValueError:
        return "an answer that is not JSON"
    return answer.get("statusCode") if isinstance(answer, Mapping) else None


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", ""))[:200]
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", "replace")


def _main(name: str, event: Any, status: int = 200, error: str | None = None) -> Scenario:
    return Scenario("main", name, event, expected_error=error, expected_status=status)


_STEPS: Final = [
    {"op": "add", "value": 3},
    {"op": "multiply", "value": 4},
    {"op": "divide", "value": 2},
    {"op": "power", "value": 2},
    {"op": "clamp", "low": 0, "high": 50},
]

MAIN_SCENARIOS: Final = (
    _main("add integers", {"operation": "add", "numbers": [1, 2, 3]}),
    _main("add floats", {"operation": "add", "numbers": [1.5, 2]}),
    _main("add not a list", {"operation": "add", "numbers": "1,2"}, 400),
    _main("add nothing", {"operation": "add", "numbers": []}, 400),
    _main("add a boolean", {"operation": "add", "numbers": [1, True]}, 400),
    # Lambda's own JSON rejects Infinity; a JSON body parsed by the function does not.
    _main("add infinity", {"body": '{"operation": "add", "numbers": [1, Infinity]}'}, 400),
    _main("multiply", {"operation": "multiply", "numbers": [2, 3, 4]}),
    _main("multiply by zero", {"operation": "multiply", "numbers": [2, 0, 5]}),
    _main("divide exactly", {"operation": "divide", "numbers": [100, 5, 2]}),
    _main("divide to a fraction", {"operation": "divide", "numbers": [7, 2]}),
    _main("integer division", {"operation": "divide", "numbers": [7, 2], "integer": True}),
    _main("divide by zero", {"operation": "divide", "numbers": [1, 0]}, 400),
    _main("divide one number", {"operation": "divide", "numbers": [1]}, 400),
    _main("random even", {"operation": "random", "seed": 1}),
    _main("random odd", {"operation": "random", "seed": 3}),
    _main("random bad range", {"operation": "random", "low": 9, "high": 1}, 400),
    _main("random choice", {"operation": "random", "kind": "choice", "options": [1, 2], "seed": 5}),
    _main(
        "random sample",
        {"operation": "random", "kind": "sample", "options": ["a", "b", "c"], "seed": 5},
    ),
    _main(
        "random oversample",
        {"operation": "random", "kind": "sample", "options": ["a"], "size": 3, "seed": 5},
        400,
    ),
    _main("random no options", {"operation": "random", "kind": "choice", "seed": 5}, 400),
    _main("random unknown kind", {"operation": "random", "kind": "gauss", "seed": 5}, 400),
    _main("health", {"operation": "health"}),
    _main("complex pipeline", {"operation": "complex", "start": 2, "steps": _STEPS}),
    _main("complex no steps", {"operation": "complex"}),
    _main("complex bad start", {"operation": "complex", "start": "two"}, 400),
    _main("complex steps not a list", {"operation": "complex", "steps": {"op": "add"}}, 400),
    _main("complex too many steps", {"operation": "complex", "steps": [{"op": "add"}] * 21}, 400),
    _main("complex step without op", {"operation": "complex", "steps": [{"value": 1}]}, 400),
    _main("complex unknown op", {"operation": "complex", "steps": [{"op": "sqrt"}]}, 400),
    _main(
        "complex zero to a negative power",
        {"operation": "complex", "start": 0, "steps": [{"op": "power", "value": -1}]},
        400,
    ),
    _main(
        "complex clamp backwards",
        {"operation": "complex", "steps": [{"op": "clamp", "low": 5, "high": 1}]},
        400,
    ),
    _main(
        "complex crash",
        {"operation": "complex", "start": 2, "steps": [{"op": "power", "value": "x"}]},
        error="TypeError",
    ),
    _main("async squares", {"operation": "async", "values": [1, 2, 3]}),
    _main("async partial failure", {"operation": "async", "values": [2, -1]}),
    _main("async timeout", {"operation": "async", "values": [1], "delay": 0.2, "timeout": 0.01}),
    _main("async bad values", {"operation": "async", "values": "1"}, 400),
    _main("default menu", {}),
    _main("unknown operation", {"operation": "sqrt"}),
    _main("api gateway body", {"body": json.dumps({"operation": "add", "numbers": [4, 5]})}),
    _main("api gateway empty body", {"body": None}),
    _main("api gateway bad json", {"body": "{not json"}, 400),
    _main("api gateway list body", {"body": "[1, 2]"}, 400),
    _main("event not an object", [1, 2], 400),
)

SIMPLE_SCENARIOS: Final = (
    Scenario("simple", "default message", {}),
    Scenario("simple", "reversed", {"message": "stressed", "reverse": True}),
    Scenario("simple", "repeated", {"message": "ho", "repeat": 3}),
    Scenario("simple", "repeated too often", {"repeat": 9}, expected_status=400),
    Scenario("simple", "not an object", "just text"),
)

ERROR_SCENARIOS: Final = (
    Scenario("error", "no error", {}),
    Scenario("error", "value error", {"error_type": "value"}, "ValueError"),
    Scenario("error", "type error", {"error_type": "type"}, "TypeError"),
    Scenario("error", "key error", {"error_type": "key"}, "KeyError"),
    Scenario("error", "runtime error", {"error_type": "runtime"}, "RuntimeError"),
    Scenario(
        "error", "runtime error at once", {"error_type": "runtime", "attempts": 0}, "RuntimeError"
    ),
    Scenario("error", "custom error", {"error_type": "custom"}, "PaymentDeclinedError"),
    Scenario("error", "unknown error type", {"error_type": "cosmic"}, "ValueError"),
)

EXAMPLE_SCENARIOS: Final = (
    Scenario("example-simple", "greet", {"name": "Ada"}),
    Scenario("example-simple", "greet the world", {}),
    Scenario("example-simple", "shout", {"name": "Ada", "shout": True}),
    Scenario("example-simple", "blank name", {"name": "  "}, "ValueError"),
)

#: One iteration of the load test.
STANDARD: Final = MAIN_SCENARIOS + SIMPLE_SCENARIOS + ERROR_SCENARIOS + EXAMPLE_SCENARIOS


def scenarios_for(functions: list[str] | None = None) -> list[Scenario]:
    """The standard scenarios, of the named functions only if given."""
    if not functions:
        return list(STANDARD)
    known = {s.function for s in STANDARD}
    unknown = sorted(set(functions) - known)
    if unknown:
        raise ValueError(
            f"no scenarios for {', '.join(unknown)}; the functions are: {', '.join(sorted(known))}"
        )
    return [s for s in STANDARD if s.function in functions]
