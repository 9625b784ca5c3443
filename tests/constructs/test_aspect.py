"""CoverageInstrumentation on a stack with mixed runtimes, exclusions and instrumented functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageInstrumentation,
    CoverageLayer,
    CoverageLayers,
    InstrumentedFunction,
)
from coverage_cdk_constructs.nag import BASIC_EXECUTION_ROLE, acknowledge
from tests.constructs.conftest import LAYER_ARN, code, imported_layer
from tests.constructs.templates import logical_id, role_id, statements_for_role
from tests.constructs.test_apps import synthesise

ZERO_CODE = "coverage_wrapper.handler.handler"


@pytest.fixture(scope="module")
def mixed() -> tuple[cdk.Stack, dict[str, str], dict[str, Any]]:
    """Python 3.10-3.14 and a future one, Node.js, a container image, exclusions, two aspects."""
    stack = cdk.Stack(cdk.App(), "Mixed")
    bucket = CoverageBucket(stack, "Coverage")
    layer = imported_layer(stack)
    made: dict[str, lambda_.Function] = {}
    for minor in range(10, 15):
        made[f"Py3{minor}"] = lambda_.Function(
            stack,
            f"Py3{minor}",
            runtime=getattr(lambda_.Runtime, f"PYTHON_3_{minor}"),
            handler=f"svc{minor}.handler",
            code=code(),
        )
    # A runtime newer than this release measures: recognised as Python by its
    # name, and left alone with a warning rather than failing the synthesis.
    made["Future"] = lambda_.Function(
        stack,
        "Future",
        runtime=lambda_.Runtime(
            "python3.99", lambda_.RuntimeFamily.PYTHON, supports_inline_code=True
        ),
        handler="future.handler",
        code=code(),
    )
    made["Node"] = lambda_.Function(
        stack,
        "Node",
        runtime=lambda_.Runtime.NODEJS_20_X,
        handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => 1;"),
    )
    made["Image"] = lambda_.DockerImageFunction(
        stack,
        "Image",
        code=lambda_.DockerImageCode.from_ecr(ecr.Repository.from_repository_name(stack, "R", "i")),
    )
    tools = Construct(stack, "Tools")
    made["Excluded"] = lambda_.Function(
        tools,
        "Excluded",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="tool.handler",
        code=code(),
    )
    CoverageInstrumentation.exclude(tools)
    made["OptedOut"] = InstrumentedFunction(
        stack,
        "OptedOut",
        bucket=bucket,
        coverage_enabled=False,
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="prod.handler",
        code=code(),
    )
    made["Decorated"] = InstrumentedFunction(
        stack,
        "Decorated",
        bucket=bucket,
        layer=layer,
        coverage_mode="decorator",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="deco.handler",
        code=code(),
    )
    aspect = CoverageInstrumentation(bucket=bucket, layer=layer, sample_rate=0.5)
    cdk.Aspects.of(stack).add(aspect, priority=cdk.AspectPriority.MUTATING)
    # Added twice with other settings (e.g. by two teams' code): instrumented
    # once, by the first, and the second is reported.
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=bucket, layer=layer), priority=cdk.AspectPriority.MUTATING
    )
    template = assertions.Template.from_stack(stack)
    ids = {name: logical_id(f) for name, f in made.items()}
    ids |= {f"{n}Role": role_id(f) for n, f in made.items() if f.role is not None}
    ids["Bucket"] = logical_id(bucket.bucket)
    return stack, ids, template.to_json()["Resources"]


def test_every_python_function_is_instrumented_once(
    mixed: tuple[cdk.Stack, dict[str, str], dict[str, Any]],
) -> None:
    _, ids, resources = mixed
    for name, handler in [(f"Py3{m}", f"svc{m}.handler") for m in range(10, 15)]:
        properties = resources[ids[name]]["Properties"]
        assert properties["Handler"] == ZERO_CODE, name
        assert properties["Layers"] == [LAYER_ARN], name
        variables = properties["Environment"]["Variables"]
        assert variables["COVERAGE_ORIGINAL_HANDLER"] == handler
        assert variables["COVERAGE_SAMPLE_RATE"] == "0.5"  # the first aspect's, not the second's
        assert variables["COVERAGE_S3_BUCKET"] == {"Ref": ids["Bucket"]}


def test_its_functions_may_write_only_their_own_keys(
    mixed: tuple[cdk.Stack, dict[str, str], dict[str, Any]],
) -> None:
    stack, ids, _ = mixed
    template = assertions.Template.from_stack(stack)
    for name in ("Py310", "Py314"):
        assert statements_for_role(template, ids[f"{name}Role"]) == [
            {
                "Action": ["s3:PutObject"],
                "Condition": {"ArnEquals": {"lambda:SourceFunctionArn": f"<{ids[name]}.Arn>"}},
                "Effect": "Allow",
                "Resource": [f"<{ids['Bucket']}.Arn>/coverage/????/??/??/<{ids[name]}>/*"],
            }
        ]


def test_other_runtimes_images_exclusions_and_opt_outs_are_left_alone(
    mixed: tuple[cdk.Stack, dict[str, str], dict[str, Any]],
) -> None:
    stack, ids, resources = mixed
    assert resources[ids["Node"]]["Properties"]["Handler"] == "index.handler"
    assert resources[ids["Image"]]["Properties"]["PackageType"] == "Image"
    for name in ("Node", "Image", "Excluded", "OptedOut", "Future"):
        assert "Layers" not in resources[ids[name]]["Properties"], name
        assert "Environment" not in resources[ids[name]]["Properties"], name
    assert resources[ids["Future"]]["Properties"]["Handler"] == "future.handler"
    assert resources[ids["Excluded"]]["Properties"]["Handler"] == "tool.handler"
    assert resources[ids["OptedOut"]]["Properties"]["Handler"] == "prod.handler"
    assert resources[ids["Decorated"]]["Properties"]["Handler"] == "deco.handler"
    template = assertions.Template.from_stack(stack)
    for name in ("Node", "Image", "Excluded", "OptedOut", "Future"):
        assert statements_for_role(template, ids[f"{name}Role"]) == [], name


def test_skipped_functions_carry_one_warning_each_that_says_why_and_how_to_opt_out(
    mixed: tuple[cdk.Stack, dict[str, str], dict[str, Any]],
) -> None:
    stack, _, _ = mixed
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("Lambda Coverage left")
    )
    opt_out = "keep it out with CoverageInstrumentation.exclude(function) or on a scope above"
    assert sorted((w.id, str(w.entry.data)) for w in warnings) == [
        (
            "/Mixed/Future",
            "Lambda Coverage left Mixed/Future uninstrumented: its runtime python3.99 is not one "
            "this release measures (python3.10, python3.11, python3.12, python3.13, python3.14). "
            f"Move it to one of those, or {opt_out} [ack: lambda-coverage:unsupported-python]",
        ),
        (
            "/Mixed/Image",
            "Lambda Coverage left Mixed/Image uninstrumented: it is a container image, which "
            "layers cannot reach. Build the wrapper into the image (see the wrapper's README), "
            f"or {opt_out} [ack: lambda-coverage:container-image]",
        ),
        (
            "/Mixed/Node",
            "Lambda Coverage left Mixed/Node uninstrumented: runtime nodejs20.x is not Python. "
            f"Lambda Coverage measures python3.* functions; {opt_out} "
            "[ack: lambda-coverage:not-python]",
        ),
    ]


def test_a_second_aspect_with_other_settings_is_reported_once(
    mixed: tuple[cdk.Stack, dict[str, str], dict[str, Any]],
) -> None:
    stack, _, _ = mixed
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("two CoverageInstrumentation aspects")
    )
    settings = "bucket=Mixed/Coverage, layer=Mixed/ImportedLayer, coverage_mode='zero-code'"
    assert [(w.id, str(w.entry.data)) for w in warnings] == [
        (
            "/Mixed",
            "Lambda Coverage: two CoverageInstrumentation aspects with different settings reach "
            "Mixed/Py310 (and maybe other functions of Mixed); it keeps the first one's "
            f"({settings}, sample_rate=0.5) and ignores this one's ({settings}, sample_rate=1). "
            "Add one aspect per function, or exclude a scope from one of them "
            "[ack: lambda-coverage:conflicting-aspects]",
        ),
    ]


def test_without_a_layer_the_aspect_uses_the_stacks_own(layers_built: type[CoverageLayer]) -> None:
    stack = cdk.Stack(cdk.App(), "AspectLayer")
    bucket = CoverageBucket(stack, "Coverage")
    function = lambda_.Function(
        stack,
        "Arm",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="app.handler",
        code=code(),
        architecture=lambda_.Architecture.ARM_64,
    )
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=bucket), priority=cdk.AspectPriority.MUTATING
    )
    resources = assertions.Template.from_stack(stack).to_json()["Resources"]
    layer = stack.node.find_child("LambdaCoverageLayerArm64")
    assert isinstance(layer, CoverageLayer)
    assert resources[logical_id(function)]["Properties"]["Layers"] == [{"Ref": logical_id(layer)}]


def test_bad_aspect_options_are_refused_when_it_is_made() -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError, match=r"coverage_mode='off'"):
        CoverageInstrumentation(bucket=CoverageBucket(stack, "C"), coverage_mode="off")


def test_an_app_wide_aspect_with_the_bucket_in_another_stack_is_cdk_nag_clean(
    tmp_path: Path,
) -> None:
    """The write policy names an imported bucket ARN; its finding is acknowledged as such."""
    app = cdk.App(outdir=str(tmp_path))
    data = cdk.Stack(app, "Data")
    bucket = CoverageBucket(data, "Coverage")
    service = cdk.Stack(app, "Service")
    function = lambda_.Function(
        service,
        "Orders",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="app.handler",
        code=code(),
    )
    cdk.Aspects.of(app).add(
        CoverageInstrumentation(bucket=bucket, layer=imported_layer(service)),
        priority=cdk.AspectPriority.MUTATING,
    )
    acknowledge(bucket.bucket, "AwsSolutions-S1", "No access logs in this test")
    acknowledge(function, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", "The team's own role")
    acknowledge(function, "AwsSolutions-L1", "The team's own runtime")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    failure, violations = synthesise(app, tmp_path)
    assert violations == [], violations
    assert failure is None
    template = assertions.Template.from_stack(service)
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    bucket_arn = statement["Resource"]["Fn::Join"][1][0]
    assert set(bucket_arn) == {"Fn::ImportValue"}


def test_a_layer_that_cannot_be_built_fails_the_synth_naming_each_function_once() -> None:
    """The build is tried once per architecture, and the error keeps its type's name."""
    stack = cdk.Stack(cdk.App(), "Broken")
    broken = CoverageLayers.build(stack, "Layer", coverage_versions={"3.13": "7.17.4"})
    for name in ("A", "B"):
        lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="app.handler",
            code=code(),
        )
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=CoverageBucket(stack, "Coverage"), layer=broken),
        priority=cdk.AspectPriority.MUTATING,
    )
    with pytest.raises(RuntimeError) as failed:
        assertions.Template.from_stack(stack)
    cause = (
        "LayerBuildError: the coverage layer for x86_64 could not be built (first needed by "
        "Broken/A): no coverage.py version given for Python 3.10"
    )
    assert f"[Broken/A] {cause}" in str(failed.value)
    assert f"[Broken/B] {cause}" in str(failed.value)


def test_a_handler_already_redirected_by_hand_is_not_redirected_again() -> None:
    """Redirecting twice would make the wrapper load itself as the original handler."""
    stack = cdk.Stack(cdk.App(), "ByHand")
    function = lambda_.Function(
        stack,
        "F",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler=ZERO_CODE,
        code=code(),
        environment={"COVERAGE_ORIGINAL_HANDLER": "app.handler"},
    )
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(
            bucket=CoverageBucket(stack, "Coverage"), layer=imported_layer(stack)
        ),
        priority=cdk.AspectPriority.MUTATING,
    )
    template = assertions.Template.from_stack(stack)
    properties = template.to_json()["Resources"][logical_id(function)]["Properties"]
    assert properties["Handler"] == ZERO_CODE
    assert properties["Environment"]["Variables"]["COVERAGE_ORIGINAL_HANDLER"] == "app.handler"
    assert properties["Layers"] == [LAYER_ARN]
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("Lambda Coverage")
    )
    assert warnings == []


def test_singletons_can_be_included() -> None:
    stack = cdk.Stack(cdk.App(), "Singletons")
    site = s3.Bucket(stack, "Site")
    s3_deployment.BucketDeployment(
        stack,
        "Deploy",
        sources=[s3_deployment.Source.data("index.html", "hi")],
        destination_bucket=site,
    )
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(
            bucket=CoverageBucket(stack, "Coverage"),
            layer=imported_layer(stack),
            include_singletons=True,
        ),
        priority=cdk.AspectPriority.MUTATING,
    )
    (handler,) = [
        resource["Properties"]
        for resource in assertions.Template.from_stack(stack)
        .find_resources("AWS::Lambda::Function")
        .values()
    ]
    assert handler["Handler"] == ZERO_CODE
    assert handler["Layers"][-1] == LAYER_ARN
    assert handler["Environment"]["Variables"]["COVERAGE_ORIGINAL_HANDLER"] == "index.handler"
