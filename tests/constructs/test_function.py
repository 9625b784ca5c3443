"""InstrumentedFunction: handler redirection, environment, layer, the exact IAM policy."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageLayer,
    InstrumentedFunction,
    LayerArchitectureError,
)
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE
from tests.constructs.conftest import LAYER_ARN, code, imported_layer
from tests.constructs.templates import logical_id, role_id, statements_for_role

#: The constructs set the wrapper's own default layout (tests/constructs/test_key_contract.py
#: proves that the grant, the wrapper's keys and the combiner agree on it).
KEY_TEMPLATE = DEFAULT_KEY_TEMPLATE


@pytest.fixture(scope="module")
def instrumented() -> tuple[dict[str, str], assertions.Template]:
    """One stack: a bucket, a zero-code function, a decorator one, a disabled one."""
    stack = cdk.Stack(cdk.App(), "Instrumented")
    bucket = CoverageBucket(stack, "Coverage")
    layer = imported_layer(stack)
    functions = {
        "Orders": InstrumentedFunction(
            stack,
            "Orders",
            bucket=bucket,
            layer=layer,
            sample_rate=0.25,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=code(),
        ),
        "Decorated": InstrumentedFunction(
            stack,
            "Decorated",
            bucket=bucket,
            layer=layer,
            coverage_mode="decorator",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="orders/api.handler",
            code=code(),
        ),
        "Production": InstrumentedFunction(
            stack,
            "Production",
            bucket=bucket,
            layer=layer,
            coverage_enabled=False,
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="prod.handler",
            code=code(),
        ),
    }
    ids = {name: logical_id(f) for name, f in functions.items()}
    ids |= {f"{name}Role": role_id(f) for name, f in functions.items()}
    ids["Bucket"] = logical_id(bucket.bucket)
    return ids, assertions.Template.from_stack(stack)


def _function(template: assertions.Template, logical: str) -> dict[str, object]:
    properties: dict[str, object] = template.to_json()["Resources"][logical]["Properties"]
    return properties


def test_zero_code_redirects_the_handler_and_keeps_the_original(
    instrumented: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = instrumented
    orders = _function(template, ids["Orders"])
    assert orders["Handler"] == "coverage_wrapper.handler.handler"
    assert orders["Layers"] == [LAYER_ARN]
    assert orders["Runtime"] == "python3.12"
    assert orders["Environment"] == {
        "Variables": {
            "COVERAGE_ORIGINAL_HANDLER": "app.handler",
            "COVERAGE_ENABLED": "true",
            "COVERAGE_S3_BUCKET": {"Ref": ids["Bucket"]},
            "COVERAGE_S3_PREFIX": "coverage/",
            "COVERAGE_S3_KEY_TEMPLATE": KEY_TEMPLATE,
            "COVERAGE_SAMPLE_RATE": "0.25",
        }
    }


def test_decorator_mode_leaves_the_handler_alone(
    instrumented: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = instrumented
    decorated = _function(template, ids["Decorated"])
    assert decorated["Handler"] == "orders/api.handler"
    assert decorated["Layers"] == [LAYER_ARN]
    assert decorated["Environment"] == {
        "Variables": {
            "COVERAGE_ENABLED": "true",
            "COVERAGE_S3_BUCKET": {"Ref": ids["Bucket"]},
            "COVERAGE_S3_PREFIX": "coverage/",
            "COVERAGE_S3_KEY_TEMPLATE": KEY_TEMPLATE,
            "COVERAGE_SAMPLE_RATE": "1",
        }
    }


def test_disabled_is_a_plain_function_without_layer_environment_or_permission(
    instrumented: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = instrumented
    production = _function(template, ids["Production"])
    assert production["Handler"] == "prod.handler"
    assert "Layers" not in production
    assert "Environment" not in production
    assert statements_for_role(template, ids["ProductionRole"]) == []


def test_a_function_may_write_only_its_own_keys_and_read_nothing(
    instrumented: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = instrumented
    for name in ("Orders", "Decorated"):
        assert statements_for_role(template, ids[f"{name}Role"]) == [
            {
                "Action": ["s3:PutObject"],
                "Condition": {"ArnEquals": {"lambda:SourceFunctionArn": f"<{ids[name]}.Arn>"}},
                "Effect": "Allow",
                "Resource": [f"<{ids['Bucket']}.Arn>/coverage/????/??/??/<{ids[name]}>/*"],
            }
        ]


def test_kms_encrypted_bucket_lets_the_function_encrypt_only() -> None:
    stack = cdk.Stack(cdk.App(), "Kms")
    key = kms.Key(stack, "Key")
    bucket = CoverageBucket(stack, "Coverage", encryption_key=key)
    function = InstrumentedFunction(
        stack,
        "Orders",
        bucket=bucket,
        layer=imported_layer(stack),
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="app.handler",
        code=code(),
    )
    template = assertions.Template.from_stack(stack)
    role = role_id(function)
    kms_statements = [
        s for s in statements_for_role(template, role) if s["Action"][0][:4] == "kms:"
    ]
    assert kms_statements == [
        {
            "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
            "Effect": "Allow",
            "Resource": [f"<{logical_id(key)}.Arn>"],
        }
    ]


def test_a_plain_ibucket_uses_the_default_prefix() -> None:
    stack = cdk.Stack(cdk.App(), "Plain")
    bucket = s3.Bucket.from_bucket_name(stack, "Team", "team-coverage")
    InstrumentedFunction(
        stack,
        "Orders",
        bucket=bucket,
        layer=imported_layer(stack),
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="app.handler",
        code=code(),
    )
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": {
                    "COVERAGE_S3_BUCKET": "team-coverage",
                    "COVERAGE_S3_PREFIX": "coverage/",
                }
            }
        },
    )


@pytest.mark.parametrize(
    ("props", "error", "message"),
    [
        (
            {"coverage_mode": "auto"},
            ValueError,
            r"coverage_mode='auto': choose 'zero-code' \(handler redirected\) or 'decorator'",
        ),
        ({"sample_rate": 1.5}, ValueError, r"sample_rate=1.5 must be between 0 and 1"),
        ({"sample_rate": -0.1}, ValueError, r"sample_rate=-0.1 must be between 0 and 1"),
        (
            {"runtime": lambda_.Runtime.NODEJS_20_X},
            ValueError,
            r"Bad/F: runtime nodejs20.x is not a Python runtime",
        ),
    ],
)
def test_bad_props_are_refused_with_the_fix(
    props: dict[str, object], error: type[Exception], message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    bucket = CoverageBucket(stack, "Coverage")
    settings: dict[str, Any] = {"runtime": lambda_.Runtime.PYTHON_3_12, **props}
    with pytest.raises(error, match=message):
        InstrumentedFunction(
            stack,
            "F",
            bucket=bucket,
            layer=imported_layer(stack),
            handler="app.handler",
            code=code(),
            **settings,
        )


def test_without_a_layer_one_per_stack_and_architecture_is_made(
    layers_built: type[CoverageLayer],
) -> None:
    stack = cdk.Stack(cdk.App(), "DefaultLayers")
    bucket = CoverageBucket(stack, "Coverage")
    made = [
        InstrumentedFunction(
            stack,
            name,
            bucket=bucket,
            architecture=architecture,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=code(),
        )
        for name, architecture in (
            ("A", lambda_.Architecture.X86_64),
            ("B", lambda_.Architecture.X86_64),
            ("C", lambda_.Architecture.ARM_64),
            ("D", lambda_.Architecture.ARM_64),
        )
    ]
    template = assertions.Template.from_stack(stack)
    layers = template.find_resources("AWS::Lambda::LayerVersion")
    by_architecture = {v["Properties"]["CompatibleArchitectures"][0]: k for k, v in layers.items()}
    assert set(by_architecture) == {"x86_64", "arm64"}
    for function, architecture in zip(made, ("x86_64", "x86_64", "arm64", "arm64"), strict=True):
        assert _function(template, logical_id(function))["Layers"] == [
            {"Ref": by_architecture[architecture]}
        ]
    assert CoverageLayer.for_stack(made[0]) is stack.node.find_child("LambdaCoverageLayerX8664")


def test_a_layer_of_another_architecture_is_refused(layers_built: type[CoverageLayer]) -> None:
    stack = cdk.Stack(cdk.App(), "Mismatch")
    layer = layers_built(stack, "Layer", architecture=lambda_.Architecture.X86_64)
    with pytest.raises(
        LayerArchitectureError,
        match=r"Mismatch/F runs on arm64 but the layer Mismatch/Layer is built for x86_64: pass "
        r"layer=CoverageLayers\(x86_64=..., arm64=...\), CoverageLayers.published\(...\) or "
        r"CoverageLayers.build\(...\) so that each function gets its architecture's layer",
    ):
        InstrumentedFunction(
            stack,
            "F",
            bucket=CoverageBucket(stack, "Coverage"),
            layer=layer,
            architecture=lambda_.Architecture.ARM_64,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=code(),
        )
