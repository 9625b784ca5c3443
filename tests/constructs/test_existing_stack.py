"""A stack like the ones teams already have, instrumented by the aspect and by InstrumentedFunction.

Python 3.11-3.13 on both architectures, one function with layers already
attached, one with its own ``COVERAGE_*`` variables, SnapStart behind an
alias, a Python 3.9 function, one with five layers, one whose role is
imported with ``mutable=False``, a Node.js function, a container image and a
``BucketDeployment`` (aws-cdk-lib's Python singleton handler). Each is
checked from the synthesised template: the exact layer per function, the
exact variables and policies, the warnings, and cdk-nag's verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from cdk_nag import AwsSolutionsChecks

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageInstrumentation,
    CoverageLayers,
    InstrumentedFunction,
)
from coverage_cdk_constructs.nag import BASIC_EXECUTION_ROLE, acknowledge, acknowledge_wildcards
from tests.constructs.conftest import code
from tests.constructs.templates import logical_id, render, role_id, statements_for_role
from tests.constructs.test_apps import synthesise

ZERO_CODE: Final = "coverage_wrapper.handler.handler"
PUBLISHER: Final = "111122223333"
REGION: Final = "eu-west-1"
KEY_TEMPLATE: Final = (
    "{prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{container}-{pid}-{seq}.coverage"
)
THEIR_LAYERS: Final = [
    f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:7",
    f"arn:aws:lambda:{REGION}:444455556666:layer:shared-models:12",
]
FIVE_LAYERS: Final = [f"arn:aws:lambda:{REGION}:444455556666:layer:tool{n}:1" for n in range(5)]
IMPORTED_ROLE: Final = "arn:aws:iam::123456789012:role/platform-managed"
ARM: Final = lambda_.Architecture.ARM_64


def published_arn(architecture: str) -> str:
    """The published layer's ARN as the template renders it."""
    return (
        f"arn:<AWS::Partition>:lambda:{REGION}:{PUBLISHER}:layer:lambda-coverage-{architecture}:4"
    )


@dataclass(frozen=True)
class Python:
    """A Python function of the existing stack: how it is made, what it should become."""

    runtime: lambda_.Runtime
    handler: str
    architecture: lambda_.Architecture = lambda_.Architecture.X86_64
    props: tuple[tuple[str, Any], ...] = ()


PYTHONS: Final = {
    "Orders": Python(lambda_.Runtime.PYTHON_3_11, "orders.handler"),
    "Billing": Python(lambda_.Runtime.PYTHON_3_12, "billing.handler", ARM),
    "Reports": Python(lambda_.Runtime.PYTHON_3_13, "reports.handler", ARM),
    "Configured": Python(lambda_.Runtime.PYTHON_3_12, "configured.handler"),
    "Snap": Python(
        lambda_.Runtime.PYTHON_3_12,
        "snap.handler",
        props=(("snap_start", lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS),),
    ),
    "Legacy": Python(lambda_.Runtime.PYTHON_3_9, "legacy.handler"),
    "Crowded": Python(lambda_.Runtime.PYTHON_3_12, "crowded.handler"),
    "Imported": Python(lambda_.Runtime.PYTHON_3_13, "imported.handler", ARM),
}


@dataclass
class Built:
    """The synthesised existing-style stack."""

    stack: cdk.Stack
    ids: dict[str, str]
    resources: dict[str, Any]
    template: assertions.Template
    failure: str | None
    violations: list[dict[str, Any]]


def build(mode: str, outdir: Path) -> Built:
    """The existing stack: plain functions under the aspect, InstrumentedFunctions, or plain."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Existing", env=cdk.Environment(region=REGION))
    bucket = CoverageBucket(stack, "Coverage")
    layers = CoverageLayers.published(stack, "Layers", version=4, account=PUBLISHER)
    functions: dict[str, lambda_.Function] = {}
    for name, python in PYTHONS.items():
        props: dict[str, Any] = {
            "runtime": python.runtime,
            "handler": python.handler,
            "architecture": python.architecture,
            "code": code(),
            **dict(python.props),
        }
        if name == "Reports":
            props["layers"] = [
                lambda_.LayerVersion.from_layer_version_arn(stack, f"Theirs{n}", arn)
                for n, arn in enumerate(THEIR_LAYERS)
            ]
        if name == "Crowded":
            props["layers"] = [
                lambda_.LayerVersion.from_layer_version_arn(stack, f"Tool{n}", arn)
                for n, arn in enumerate(FIVE_LAYERS)
            ]
        if name == "Configured":
            props["environment"] = {
                "COVERAGE_ENABLED": "false",
                "COVERAGE_S3_BUCKET": "team-coverage",
                "TABLE": "orders",
            }
        if name == "Imported":
            props["role"] = iam.Role.from_role_arn(
                stack, "PlatformRole", IMPORTED_ROLE, mutable=False
            )
        if mode == "instrumented":
            functions[name] = InstrumentedFunction(
                stack, name, bucket=bucket, layer=layers, **props
            )
        else:
            functions[name] = lambda_.Function(stack, name, **props)
    lambda_.Alias(stack, "SnapLive", alias_name="live", version=functions["Snap"].current_version)
    node = lambda_.Function(
        stack,
        "Node",
        runtime=lambda_.Runtime.NODEJS_22_X,
        handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => 1;"),
    )
    image = lambda_.DockerImageFunction(
        stack,
        "Image",
        code=lambda_.DockerImageCode.from_ecr(
            ecr.Repository.from_repository_name(stack, "Repository", "service")
        ),
    )
    site = s3.Bucket(stack, "Site", enforce_ssl=True)
    s3_deployment.BucketDeployment(
        stack,
        "Deploy",
        sources=[s3_deployment.Source.data("index.html", "hi")],
        destination_bucket=site,
    )
    if mode == "aspect":
        cdk.Aspects.of(stack).add(
            CoverageInstrumentation(bucket=bucket, layer=layers),
            priority=cdk.AspectPriority.MUTATING,
        )
    _acknowledge_their_own_findings(stack, [*functions.values(), node, image], site)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    failure, violations = synthesise(app, outdir)
    template = assertions.Template.from_stack(stack)
    ids = {name: logical_id(f) for name, f in functions.items()}
    ids |= {f"{name}Role": role_id(f) for name, f in functions.items() if name != "Imported"}
    ids["Bucket"] = logical_id(bucket.bucket)
    ids["Alias"] = logical_id(stack.node.find_child("SnapLive"))
    ids["Node"], ids["Image"] = logical_id(node), logical_id(image)
    return Built(stack, ids, template.to_json()["Resources"], template, failure, violations)


def _acknowledge_their_own_findings(
    stack: cdk.Stack, functions: list[lambda_.Function], site: s3.Bucket
) -> None:
    """What cdk-nag says about the team's own resources: theirs, not Lambda Coverage's."""
    reason = "The team's own resource, outside this test"
    for function in functions:
        acknowledge(function, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", reason)
        acknowledge(function, "AwsSolutions-L1", reason)
    cdk.Validations.of(stack.node.find_child("Legacy")).acknowledge(
        cdk.Acknowledgment(id="CloudFormation-Validate::W2531", reason=reason)
    )
    acknowledge(site, "AwsSolutions-S1", reason)
    acknowledge(stack.node.find_child("Coverage"), "AwsSolutions-S1", reason)
    for child in stack.node.children:
        if isinstance(child, lambda_.Function) and child.node.id.startswith("Custom::CDK"):
            acknowledge(child, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", reason)
            acknowledge(child, "AwsSolutions-L1", reason)
            for action in ("GetObject*", "GetBucket*", "List*", "DeleteObject*", "Abort*"):
                acknowledge(child, f"AwsSolutions-IAM5[Action::s3:{action}]", reason)
            assert child.role is not None
            policy = child.role.node.find_child("DefaultPolicy")
            assert isinstance(policy, iam.Policy)
            acknowledge_wildcards(policy, policy.document, reason)
            assets = f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-{REGION}/*"
            acknowledge(child, f"AwsSolutions-IAM5[Resource::{assets}]", reason)


@pytest.fixture(scope="module", params=["aspect", "instrumented"])
def existing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The existing stack, instrumented each way (no layer is built: the published ones)."""
    mode = str(request.param)
    return build(mode, tmp_path_factory.mktemp(mode))


def _properties(built: Built, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = built.resources[built.ids[name]]["Properties"]
    return properties


def _layers(built: Built, name: str) -> list[str]:
    return [str(render(layer)) for layer in _properties(built, name).get("Layers", [])]


def test_each_function_gets_the_published_layer_of_its_architecture(existing: Built) -> None:
    x86, arm = published_arn("x86_64"), published_arn("arm64")
    assert {name: _layers(existing, name) for name in PYTHONS} == {
        "Orders": [x86],
        "Billing": [arm],
        "Reports": [*THEIR_LAYERS, arm],  # theirs first, in their order
        "Configured": [x86],
        "Snap": [x86],
        "Legacy": [],
        "Crowded": FIVE_LAYERS,
        "Imported": [arm],
    }


def _variables(function: str, handler: str | None, bucket: str) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "COVERAGE_ENABLED": "true",
        "COVERAGE_S3_BUCKET": {"Ref": bucket},
        "COVERAGE_S3_PREFIX": "coverage/",
        "COVERAGE_S3_KEY_TEMPLATE": KEY_TEMPLATE,
        "COVERAGE_SAMPLE_RATE": "1",
    }
    if handler is not None:
        variables["COVERAGE_ORIGINAL_HANDLER"] = handler
    return variables


def test_handlers_are_redirected_and_the_variables_are_exact(existing: Built) -> None:
    bucket = existing.ids["Bucket"]
    for name in ("Orders", "Billing", "Reports", "Snap", "Imported"):
        properties = _properties(existing, name)
        assert properties["Handler"] == ZERO_CODE, name
        assert properties["Environment"]["Variables"] == _variables(
            name, PYTHONS[name].handler, bucket
        ), name
    for name in ("Legacy", "Crowded"):
        properties = _properties(existing, name)
        assert properties["Handler"] == PYTHONS[name].handler, name
        assert "Environment" not in properties, name


def test_the_users_own_variables_win_and_it_stays_attachable(existing: Built) -> None:
    """``COVERAGE_ENABLED=false`` and their bucket are kept; the layer and redirect are there."""
    properties = _properties(existing, "Configured")
    assert properties["Handler"] == ZERO_CODE
    assert properties["Environment"]["Variables"] == {
        "COVERAGE_ENABLED": "false",
        "COVERAGE_S3_BUCKET": "team-coverage",
        "TABLE": "orders",
        "COVERAGE_S3_PREFIX": "coverage/",
        "COVERAGE_S3_KEY_TEMPLATE": KEY_TEMPLATE,
        "COVERAGE_SAMPLE_RATE": "1",
        "COVERAGE_ORIGINAL_HANDLER": "configured.handler",
    }


def test_write_policies_are_exact_and_only_where_they_belong(existing: Built) -> None:
    arn = f"<{existing.ids['Bucket']}.Arn>"
    for name in ("Orders", "Billing", "Reports", "Snap"):
        function = existing.ids[name]
        assert statements_for_role(existing.template, existing.ids[f"{name}Role"]) == [
            {
                "Action": ["s3:PutObject"],
                "Condition": {"ArnEquals": {"lambda:SourceFunctionArn": f"<{function}.Arn>"}},
                "Effect": "Allow",
                "Resource": [f"{arn}/coverage/????/??/??/<{function}>/*"],
            }
        ], name
    # Writes to its own bucket, skipped functions: nothing of ours.
    for name in ("Configured", "Legacy", "Crowded"):
        assert statements_for_role(existing.template, existing.ids[f"{name}Role"]) == [], name
    # The role imported with mutable=False gets no policy at all.
    policies = existing.template.find_resources("AWS::IAM::Policy")
    assert not [p for p in policies.values() if "platform-managed" in json.dumps(p)]


def test_snapstart_publishes_a_version_of_the_instrumented_function(
    existing: Built, tmp_path: Path
) -> None:
    alias = _properties(existing, "Alias")
    version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
    version = existing.resources[version_id]["Properties"]
    assert version["FunctionName"] == {"Ref": existing.ids["Snap"]}
    assert _properties(existing, "Snap")["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    # The version's logical ID hashes the final configuration: instrumenting
    # publishes a new version (and so a new snapshot) rather than reusing one.
    plain = build("plain", tmp_path)
    plain_version = _properties(plain, "Alias")["FunctionVersion"]["Fn::GetAtt"][0]
    assert plain_version != version_id


def _warnings(built: Built) -> list[tuple[str, str]]:
    found = assertions.Annotations.from_stack(built.stack).find_warning(
        "*", assertions.Match.string_like_regexp("Lambda Coverage")
    )
    return sorted((w.id, str(w.entry.data)) for w in found)


ASPECT_OPT_OUT: Final = (
    "keep it out with CoverageInstrumentation.exclude(function) or on a scope above"
)
FUNCTION_OPT_OUT: Final = "pass coverage_enabled=False to make it a plain function"


def test_each_function_left_alone_or_kept_as_it_was_has_one_warning_saying_why(
    existing: Built, request: pytest.FixtureRequest
) -> None:
    mode = request.node.callspec.params["existing"]
    opt_out = ASPECT_OPT_OUT if mode == "aspect" else FUNCTION_OPT_OUT
    expected = [
        (
            "/Existing/Configured",
            "Lambda Coverage added no write permission to Existing/Configured: its own "
            "COVERAGE_S3_BUCKET decides where it writes. Grant its role s3:PutObject on those "
            "keys [ack: lambda-coverage:not-granted]",
        ),
        (
            "/Existing/Configured",
            "Lambda Coverage kept Existing/Configured's own COVERAGE_ENABLED='false', "
            "COVERAGE_S3_BUCKET='team-coverage' (already set on the function; remove them to "
            "use the instrumentation's values); with COVERAGE_ENABLED='false' it has the layer "
            "but measures nothing until that is 'true' [ack: lambda-coverage:kept-variables]",
        ),
        (
            "/Existing/Crowded",
            "Lambda Coverage left Existing/Crowded uninstrumented: it already has 5 layers, the "
            f"most Lambda allows. Free a place (merge or drop a layer) to measure it, or {opt_out} "
            "[ack: lambda-coverage:too-many-layers]",
        ),
        (
            "/Existing/Imported",
            "Lambda Coverage did not change the role Existing/PlatformRole of "
            "Existing/Imported: it is imported with mutable=False or from another account. "
            "Give that role s3:PutObject on the objects "
            "'coverage/????/??/??/<function name>/*' of Existing/Coverage/Bucket "
            "on the condition that lambda:SourceFunctionArn equals the function's ARN "
            "(CoverageBucket.grant_write_coverage(role, function_name=..., "
            "source_function_arn=...) where the role is yours to change); until then its data "
            "cannot be uploaded "
            "[ack: lambda-coverage:immutable-role]",
        ),
        (
            "/Existing/Legacy",
            "Lambda Coverage left Existing/Legacy uninstrumented: its runtime python3.9 is not "
            "one this release measures (python3.10, python3.11, python3.12, python3.13, "
            f"python3.14). Move it to one of those, or {opt_out} "
            "[ack: lambda-coverage:unsupported-python]",
        ),
    ]
    if mode == "aspect":
        singleton = "Existing/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C"
        expected += [
            (
                f"/{singleton}",
                f"Lambda Coverage left {singleton} uninstrumented: it is the shared handler of "
                "the SingletonFunction Existing/Deploy/CustomResourceHandler (infrastructure "
                "code, not yours). Measure it with CoverageInstrumentation(..., "
                "include_singletons=True), or acknowledge this warning "
                "[ack: lambda-coverage:cdk-singleton]",
            ),
            (
                "/Existing/Image",
                "Lambda Coverage left Existing/Image uninstrumented: it is a container image, "
                "which layers cannot reach. Build the wrapper into the image (see the wrapper's "
                f"README), or {opt_out} [ack: lambda-coverage:container-image]",
            ),
            (
                "/Existing/Node",
                "Lambda Coverage left Existing/Node uninstrumented: runtime nodejs22.x is not "
                f"Python. Lambda Coverage measures python3.* functions; {opt_out} "
                "[ack: lambda-coverage:not-python]",
            ),
        ]
    assert _warnings(existing) == sorted(expected)


def test_cdks_own_handlers_are_left_alone(existing: Built) -> None:
    """The BucketDeployment's Python handler: no layer of ours, no variables, no policy."""
    (handler_id,) = [
        k
        for k, v in existing.resources.items()
        if k.startswith("CustomCDKBucketDeployment") and v["Type"] == "AWS::Lambda::Function"
    ]
    handler = existing.resources[handler_id]["Properties"]
    assert handler["Handler"] == "index.handler"
    assert "COVERAGE_ENABLED" not in json.dumps(handler)
    assert "lambda-coverage" not in json.dumps(handler["Layers"])
    # No CoverageLayer is built for it (nor for anything: the layers are published).
    layers = existing.template.find_resources("AWS::Lambda::LayerVersion")
    assert [k for k in layers if not k.startswith("DeployAwsCliLayer")] == []


def test_cdk_nag_finds_nothing_of_lambda_coverage(existing: Built) -> None:
    """The write policies (the aspect's are made during synthesis) are acknowledged."""
    assert existing.violations == [], json.dumps(existing.violations, indent=1)[:4000]
    assert existing.failure is None
