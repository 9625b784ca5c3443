"""The local runtime instruments a function exactly as the CDK constructs do."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE
from test_stack.functions import SIMPLE
from test_stack.instrument import instrument
from test_stack.layer import Layer


def test_the_variables_are_the_constructs_ones(tmp_path: Path) -> None:
    layer = Layer(tmp_path / "opt")
    function = instrument(SIMPLE, layer=layer, bucket="data", COVERAGE_LOG_LEVEL="DEBUG")
    assert function.handler == "coverage_wrapper.handler.handler"
    assert function.layer is layer
    # The same set as tests/constructs/test_function.py's zero-code function, plus the extra.
    assert dict(function.environment) == {
        "COVERAGE_ORIGINAL_HANDLER": "echo.handler",
        "COVERAGE_ENABLED": "true",
        "COVERAGE_S3_BUCKET": "data",
        "COVERAGE_S3_PREFIX": "coverage/",
        "COVERAGE_S3_KEY_TEMPLATE": DEFAULT_KEY_TEMPLATE,
        "COVERAGE_SAMPLE_RATE": "1",
        "COVERAGE_LOG_LEVEL": "DEBUG",
    }
    with pytest.raises(ValueError, match="'simple' is already instrumented"):
        instrument(function, layer=layer, bucket="data")
