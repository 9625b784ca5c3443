"""The wrapper under the real runtime client: what the caller sees is what Lambda alone gives.

Each function runs twice in the local runtime (``awslambdaric`` processes):
plain, and instrumented in zero-code mode with the wrapper's layer. Answers,
error types, messages and where the error was raised must be the same; and a
bad ``COVERAGE_ORIGINAL_HANDLER`` must fail init the way a bad handler
setting does, naming the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from test_stack.functions import catalogue_function
from test_stack.instrument import instrument
from test_stack.layer import Layer
from test_stack.pool import LocalLambda
from test_stack.s3_server import s3_client, s3_environment

BUCKET = "runtime-coverage"

pytestmark = pytest.mark.slow

ERROR_EVENTS: list[dict[str, Any]] = [
    {"error_type": kind} for kind in ("value", "type", "key", "runtime", "custom")
] + [{"error_type": "none"}]


def caller_view(payload: bytes, error_type: str | None) -> tuple[Any, ...]:
    """What the caller of Invoke can compare: the answer, or the error and its origin."""
    answer = json.loads(payload)
    if error_type is None:
        return ("ok", answer)
    trace = answer.get("stackTrace") or []
    return ("error", error_type, answer.get("errorMessage"), trace[-1] if trace else None)


def test_answers_and_errors_are_those_of_the_plain_function(
    local_lambda: Callable[..., LocalLambda], s3_endpoint: str, layer: Layer
) -> None:
    plain = replace(catalogue_function("error"), name="plain")
    # Every event runs new lines, so with a flush after each one object per event.
    measured = replace(
        instrument(
            catalogue_function("error"),
            layer=layer,
            bucket=BUCKET,
            COVERAGE_FLUSH_POLICY="invocation",
        ),
        name="measured",
    )
    pool = local_lambda([plain, measured], environment=s3_environment(s3_endpoint))
    for event in ERROR_EVENTS:
        expected = pool.invoke("plain", event)
        actual = pool.invoke("measured", event)
        assert caller_view(actual.payload, actual.error_type) == caller_view(
            expected.payload, expected.error_type
        ), event
    keys = [o["Key"] for o in s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == len(ERROR_EVENTS)
    assert all(key.startswith("coverage/") and "/measured/LATEST/" in key for key in keys)


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        (
            "nowhere.handler",
            "COVERAGE_ORIGINAL_HANDLER='nowhere.handler': no module named 'nowhere'",
        ),
        ("faults.missing", "module 'faults' has no attribute 'missing'"),
        ("faults", "COVERAGE_ORIGINAL_HANDLER='faults' is not a handler"),
    ],
)
def test_a_bad_original_handler_fails_init_like_a_bad_handler_setting(
    local_lambda: Callable[..., LocalLambda],
    s3_endpoint: str,
    layer: Layer,
    setting: str,
    fragment: str,
) -> None:
    base = catalogue_function("error")
    broken = instrument(base, layer=layer, bucket=BUCKET).with_environment(
        COVERAGE_ORIGINAL_HANDLER=setting
    )
    unwrapped_bad = replace(base, name="plain-bad", handler="nowhere.handler")
    pool = local_lambda([broken, unwrapped_bad], environment=s3_environment(s3_endpoint))

    result = pool.invoke(broken.name, {})
    lambda_itself = pool.invoke("plain-bad", {})
    # The same failure class as Lambda's own for a handler that names nothing.
    assert lambda_itself.error_type == "Runtime.ImportModuleError"
    assert result.error_type == lambda_itself.error_type
    assert fragment in json.loads(result.payload)["errorMessage"]


def test_disabled_the_function_runs_without_the_wrapper_doing_anything(
    local_lambda: Callable[..., LocalLambda], s3_endpoint: str, layer: Layer
) -> None:
    disabled = instrument(catalogue_function("error"), layer=layer, bucket=BUCKET).with_environment(
        COVERAGE_ENABLED="false", COVERAGE_S3_PREFIX="disabled/"
    )
    pool = local_lambda([disabled], environment=s3_environment(s3_endpoint))
    assert pool.invoke(disabled.name, {"error_type": "none"}).ok
    listing = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="disabled/")
    assert listing.get("KeyCount", 0) == 0
