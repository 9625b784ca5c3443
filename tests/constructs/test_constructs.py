"""CoverageBucket, InstrumentedFunction and the aspect, checked on synthesised templates."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_

from coverage_cdk_constructs import CoverageBucket, CoverageInstrumentation, InstrumentedFunction

LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:lambda-coverage:3"
CODE = lambda_.Code.from_inline("def handler(event, context):\n    return 1\n")


def layer(stack: cdk.Stack) -> lambda_.ILayerVersion:
    return lambda_.LayerVersion.from_layer_version_arn(stack, "CoverageLayer", LAYER_ARN)


@pytest.fixture(scope="module")
def instrumented() -> assertions.Template:
    """One stack shared by the tests: a bucket and an instrumented function."""
    stack = cdk.Stack(cdk.App(), "Instrumented")
    bucket = CoverageBucket(stack, "Coverage")
    InstrumentedFunction(
        stack, "Orders", bucket=bucket, layer=layer(stack), sample_rate=0.25,
        runtime=lambda_.Runtime.PYTHON_3_12, handler="app.handler", code=CODE,
    )  # fmt: skip
    return assertions.Template.from_stack(stack)


def test_bucket_is_private_encrypted_tls_only_and_retained(
    instrumented: assertions.Template,
) -> None:
    instrumented.has_resource(
        "AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
    instrumented.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True,
                "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]},
            "LifecycleConfiguration": {"Rules": [
                assertions.Match.object_like({
                    "Id": "ExpireRawCoverageData", "Prefix": "coverage/",
                    "ExpirationInDays": 30, "Status": "Enabled",
                }),
                assertions.Match.object_like({
                    "Id": "ExpireCombinedReports", "Prefix": "coverage-combined/",
                    "ExpirationInDays": 365, "Status": "Enabled",
                }),
            ]},
        },
    )  # fmt: skip
    instrumented.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"PolicyDocument": {"Statement": assertions.Match.array_with([
            assertions.Match.object_like({
                "Effect": "Deny", "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            })
        ])}},
    )  # fmt: skip


def test_zero_code_function_handler_environment_and_layer(
    instrumented: assertions.Template,
) -> None:
    instrumented.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "coverage_wrapper.handler.handler",
            "Runtime": "python3.12",
            "Layers": [LAYER_ARN],
            "Environment": {"Variables": {
                "COVERAGE_ORIGINAL_HANDLER": "app.handler",
                "COVERAGE_ENABLED": "true",
                "COVERAGE_S3_BUCKET": {
                    "Ref": assertions.Match.string_like_regexp("CoverageBucket")
                },
                "COVERAGE_S3_PREFIX": "coverage/",
                "COVERAGE_FLUSH_POLICY": "invocation",
                "COVERAGE_SAMPLE_RATE": "0.25",
            }},
        },
    )  # fmt: skip


def test_the_function_may_write_only_its_own_keys_and_read_nothing(
    instrumented: assertions.Template,
) -> None:
    policies = instrumented.find_resources("AWS::IAM::Policy")
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3_statements = [
        s for s in statements if any(str(a).startswith("s3:") for a in _list(s["Action"]))
    ]
    assert len(s3_statements) == 1
    (statement,) = s3_statements
    assert statement["Action"] == "s3:PutObject"
    assert statement["Effect"] == "Allow"
    joined = statement["Resource"]["Fn::Join"][1]
    assert joined[0]["Fn::GetAtt"][1] == "Arn"
    assert joined[1] == "/coverage/*/*/*/"
    assert joined[2]["Ref"].startswith("Orders")  # the function's own name
    assert joined[3] == "/*"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_decorator_mode_leaves_the_handler_and_disabled_is_a_plain_function() -> None:
    stack = cdk.Stack(cdk.App(), "Modes")
    bucket = CoverageBucket(stack, "Coverage")
    InstrumentedFunction(
        stack, "Decorated", bucket=bucket, layer=layer(stack), coverage_mode="decorator",
        runtime=lambda_.Runtime.PYTHON_3_13, handler="app.handler", code=CODE,
    )  # fmt: skip
    InstrumentedFunction(
        stack, "Production", bucket=bucket, coverage_enabled=False,
        runtime=lambda_.Runtime.PYTHON_3_13, handler="prod.handler", code=CODE,
    )  # fmt: skip
    template = assertions.Template.from_stack(stack)
    functions = template.find_resources("AWS::Lambda::Function")
    by_handler = {f["Properties"]["Handler"]: f["Properties"] for f in functions.values()}
    assert set(by_handler) == {"app.handler", "prod.handler"}
    assert "COVERAGE_ORIGINAL_HANDLER" not in by_handler["app.handler"]["Environment"]["Variables"]
    assert by_handler["app.handler"]["Layers"] == [LAYER_ARN]
    assert "Layers" not in by_handler["prod.handler"]
    assert "Environment" not in by_handler["prod.handler"]
    assert len(template.find_resources("AWS::IAM::Policy")) == 1  # only the decorated one writes


def test_bucket_and_bucket_props_together_is_an_error() -> None:
    stack = cdk.Stack(cdk.App(), "Both")
    existing = cdk.aws_s3.Bucket.from_bucket_name(stack, "Existing", "some-bucket")
    with pytest.raises(ValueError, match=r"bucket= .* or bucket_props= .*not both"):
        CoverageBucket(stack, "Coverage", bucket=existing, bucket_props={"versioned": True})
    with pytest.raises(ValueError, match="overlaps raw_prefix"):
        CoverageBucket(
            stack, "Overlap", raw_prefix="coverage/", combined_prefix="coverage/combined/"
        )


def test_the_aspect_instruments_python_functions_and_warns_about_the_rest() -> None:
    stack = cdk.Stack(cdk.App(), "Mixed")
    bucket = CoverageBucket(stack, "Coverage")
    lambda_.Function(
        stack, "Py", runtime=lambda_.Runtime.PYTHON_3_12, handler="svc.handler", code=CODE
    )
    lambda_.Function(
        stack, "Node", runtime=lambda_.Runtime.NODEJS_20_X, handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => 1;"),
    )  # fmt: skip
    lambda_.DockerImageFunction(
        stack, "Image",
        code=lambda_.DockerImageCode.from_ecr(
            cdk.aws_ecr.Repository.from_repository_name(stack, "Repo", "images")
        ),
    )  # fmt: skip
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=bucket, layer=layer(stack)),
        priority=cdk.AspectPriority.MUTATING,
    )
    template = assertions.Template.from_stack(stack)
    functions = {
        f["Properties"].get("Runtime", "image"): f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
    }
    assert functions["python3.12"]["Handler"] == "coverage_wrapper.handler.handler"
    assert (
        functions["python3.12"]["Environment"]["Variables"]["COVERAGE_ORIGINAL_HANDLER"]
        == "svc.handler"
    )
    assert functions["nodejs20.x"]["Handler"] == "index.handler"
    assert functions["image"]["PackageType"] == "Image"
    assert "Environment" not in functions["image"]
    assert "Layers" not in functions["nodejs20.x"]
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("Lambda Coverage skipped")
    )
    assert sorted(str(w.entry.data) for w in warnings) == [
        f"Lambda Coverage skipped Mixed/{name}: runtime {runtime} is not a Python runtime "
        "packaged as a zip [ack: lambda-coverage:not-python]"
        for name, runtime in (("Image", "FROM_IMAGE"), ("Node", "nodejs20.x"))
    ]
    assert len(template.find_resources("AWS::IAM::Policy")) == 1  # the Python one only
