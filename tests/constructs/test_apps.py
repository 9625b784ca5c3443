"""Both CDK apps synthesise offline, pass cdk-nag's AwsSolutions checks, and wire what they say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from constructs import IConstruct
from test_stack_cdk.app import STACK_NAME as TEST_STACK
from test_stack_cdk.app import build_app as build_test_stack

from coverage_cdk_constructs.bundle import Bundle
from examples_app.app import STACK_NAME as EXAMPLES_STACK
from examples_app.app import build_app as build_examples
from test_stack.aws_target import BUCKET_OUTPUT, FUNCTION_OUTPUTS
from test_stack.functions import CATALOGUE
from tests.constructs.templates import logical_id

ZERO_CODE = "coverage_wrapper.handler.handler"


def synthesise(app: cdk.App, outdir: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """Synthesise ``app``: the validation failure (if any) and cdk-nag's violations."""
    failure = None
    try:
        app.synth()
    except RuntimeError as error:  # jsii raises the ValidationFailed error as RuntimeError
        failure = str(error)
    report = json.loads((outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
    return failure, violations


def _find(stack: cdk.Stack, path: str) -> IConstruct:
    construct: IConstruct = stack
    for part in path.split("/"):
        construct = construct.node.find_child(part)
    return construct


def _functions(stack: cdk.Stack) -> dict[str, dict[str, Any]]:
    resources = assertions.Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    return {k: v["Properties"] for k, v in resources.items()}


@pytest.fixture(scope="module")
def examples(
    layer_bundles: dict[str, Bundle],
    combiner_bundle: Bundle,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[cdk.Stack, str | None, list[dict[str, Any]]]:
    outdir = tmp_path_factory.mktemp("examples")
    app = build_examples(cdk.App(outdir=str(outdir)))
    failure, violations = synthesise(app, outdir)
    stack = app.node.find_child(EXAMPLES_STACK)
    assert isinstance(stack, cdk.Stack)
    return stack, failure, violations


@pytest.fixture(scope="module")
def test_stack(
    layer_bundles: dict[str, Bundle],
    combiner_bundle: Bundle,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[cdk.Stack, str | None, list[dict[str, Any]]]:
    outdir = tmp_path_factory.mktemp("test-stack")
    app = build_test_stack(cdk.App(outdir=str(outdir)))
    failure, violations = synthesise(app, outdir)
    stack = app.node.find_child(TEST_STACK)
    assert isinstance(stack, cdk.Stack)
    return stack, failure, violations


@pytest.mark.parametrize("app", ["examples", "test_stack"])
def test_cdk_nag_finds_nothing_unacknowledged(app: str, request: pytest.FixtureRequest) -> None:
    _, failure, violations = request.getfixturevalue(app)
    assert violations == [], json.dumps(violations, indent=1)[:4000]
    assert failure is None


def test_the_examples_cover_every_usage_pattern(
    examples: tuple[cdk.Stack, str | None, list[dict[str, Any]]],
) -> None:
    stack, _, _ = examples
    functions = _functions(stack)
    by_code = {
        name: functions[logical_id(_find(stack, name))]
        for name in (
            "Simple",
            "Decorator",
            "ContextManager",
            "Health",
            "Advanced",
            "Combiner/Function",
        )
    }
    modes = {
        name: (
            by_code[name]["Handler"],
            by_code[name]["Environment"]["Variables"].get("COVERAGE_ORIGINAL_HANDLER"),
            by_code[name]["Environment"]["Variables"]["COVERAGE_SAMPLE_RATE"],
        )
        for name in ("Simple", "Decorator", "ContextManager", "Health", "Advanced")
    }
    assert modes == {
        "Simple": (ZERO_CODE, "app.handler", "1"),
        "Decorator": ("app.handler", None, "1"),
        "ContextManager": ("app.handler", None, "1"),
        "Health": ("app.handler", None, "1"),
        "Advanced": (ZERO_CODE, "app.handler", "0.1"),
    }
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "health"})
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)", "State": "ENABLED"}
    )
    assert by_code["Combiner/Function"]["Handler"] == "coverage_combiner.lambda_handler.handler"
    assert "Layers" not in by_code["Combiner/Function"]


def test_the_examples_show_the_aspect_with_a_layer_per_architecture(
    examples: tuple[cdk.Stack, str | None, list[dict[str, Any]]],
) -> None:
    """The existing arm64 function gets the arm64 layer; the InstrumentedFunctions x86_64's."""
    stack, _, _ = examples
    functions = _functions(stack)
    existing = functions[logical_id(stack.node.find_child("Existing"))]
    assert existing["Handler"] == ZERO_CODE
    assert existing["Architectures"] == ["arm64"]
    assert existing["Environment"]["Variables"]["COVERAGE_ORIGINAL_HANDLER"] == "app.handler"
    layers = {
        name: {"Ref": logical_id(stack.node.find_child(f"CoverageLayer{name}"))}
        for name in ("X8664", "Arm64")
    }
    assert existing["Layers"] == [layers["Arm64"]]
    for name in ("Simple", "Decorator", "ContextManager", "Health", "Advanced"):
        assert functions[logical_id(stack.node.find_child(name))]["Layers"] == [layers["X8664"]]


def test_production_stage_turns_coverage_off_for_the_advanced_example(
    layer_bundles: dict[str, Bundle], combiner_bundle: Bundle
) -> None:
    app = build_examples(cdk.App(context={"stage": "prod"}))
    stack = app.node.find_child(EXAMPLES_STACK)
    assert isinstance(stack, cdk.Stack)
    advanced = _functions(stack)[logical_id(stack.node.find_child("Advanced"))]
    assert advanced["Handler"] == "app.handler"
    assert "Layers" not in advanced
    assert "Environment" not in advanced


def test_the_test_stack_has_every_catalogue_function_and_the_outputs_the_driver_reads(
    test_stack: tuple[cdk.Stack, str | None, list[dict[str, Any]]],
) -> None:
    stack, _, _ = test_stack
    template = assertions.Template.from_stack(stack).to_json()
    outputs = template["Outputs"]
    assert set(outputs) == {*FUNCTION_OUTPUTS.values(), BUCKET_OUTPUT}
    functions = template["Resources"]
    for name, function in CATALOGUE.items():
        logical = outputs[FUNCTION_OUTPUTS[name]]["Value"]["Ref"]
        properties = functions[logical]["Properties"]
        assert properties["Handler"] == ZERO_CODE, name
        assert properties["Environment"]["Variables"]["COVERAGE_ORIGINAL_HANDLER"] == (
            function.handler
        )
        assert properties["MemorySize"] == function.memory_mb
    (notifications,) = [
        r for r in functions.values() if r["Type"] == "Custom::S3BucketNotifications"
    ]
    rules = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert rules[0]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "suffix", "Value": ".coverage"},
        {"Name": "prefix", "Value": "coverage/"},
    ]
