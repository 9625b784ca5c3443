"""CoverageLayer as a CDK construct, and the published layer by region."""

from __future__ import annotations

import hashlib
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_

from coverage_cdk_constructs import CoverageBucket, CoverageLayer, InstrumentedFunction
from coverage_cdk_constructs.bundle import Bundle
from coverage_cdk_constructs.errors import LayerBuildError
from tests.constructs.conftest import code
from tests.constructs.templates import logical_id


def _asset_key(bundle: Bundle) -> str:
    """The asset's S3 key: CDK hashes a custom asset hash once more."""
    return hashlib.sha256(bundle.fingerprint.encode()).hexdigest() + ".zip"


def _layer_resource(stack: cdk.Stack, layer: CoverageLayer) -> dict[str, Any]:
    resource: dict[str, Any] = assertions.Template.from_stack(stack).to_json()["Resources"][
        logical_id(layer)
    ]
    return resource


def test_defaults_every_python_x86_64_and_the_asset_named_by_the_inputs(
    layer_bundles: dict[str, Bundle],
) -> None:
    stack = cdk.Stack(cdk.App(), "Defaults")
    layer = CoverageLayer(stack, "CoverageLayer")
    resource = _layer_resource(stack, layer)
    assert resource["DeletionPolicy"] == "Delete"
    properties = resource["Properties"]
    assert properties["CompatibleArchitectures"] == ["x86_64"]
    assert properties["CompatibleRuntimes"] == [
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "python3.14",
    ]
    assert properties["LicenseInfo"] == "MIT AND Apache-2.0"
    assert "LayerName" not in properties
    assert properties["Content"]["S3Key"] == _asset_key(layer_bundles["x86_64"])
    assert layer.bundle.path == layer_bundles["x86_64"].path
    assert layer.python_versions == ("3.10", "3.11", "3.12", "3.13", "3.14")


def test_the_asset_hash_is_the_same_in_another_app(layer_bundles: dict[str, Bundle]) -> None:
    keys = []
    for _ in range(2):
        stack = cdk.Stack(cdk.App(), "Again")
        layer = CoverageLayer(stack, "CoverageLayer", architecture=lambda_.Architecture.ARM_64)
        keys.append(_layer_resource(stack, layer)["Properties"]["Content"]["S3Key"])
    assert keys == [_asset_key(layer_bundles["arm64"])] * 2


def test_props_architecture_runtimes_name_and_removal_policy(
    layer_bundles: dict[str, Bundle],
) -> None:
    stack = cdk.Stack(cdk.App(), "Props")
    layer = CoverageLayer(
        stack,
        "CoverageLayer",
        architecture=lambda_.Architecture.ARM_64,
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_12, lambda_.Runtime.PYTHON_3_13],
        layer_version_name="team-coverage",
        removal_policy=cdk.RemovalPolicy.RETAIN,
        description="ours",
    )
    resource = _layer_resource(stack, layer)
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["Properties"] | {"Content": None} == {
        "CompatibleArchitectures": ["arm64"],
        "CompatibleRuntimes": ["python3.12", "python3.13"],
        "LayerName": "team-coverage",
        "Description": "ours",
        "LicenseInfo": "MIT AND Apache-2.0",
        "Content": None,
    }
    # Only the runtimes asked for are carried.
    sites = {n.split("/")[2] for n in layer.bundle.names() if n.startswith("python/lib/")}
    assert sites == {"python3.12", "python3.13"}
    assert layer.bundle.fingerprint != layer_bundles["arm64"].fingerprint


def test_a_function_on_a_runtime_the_layer_lacks_stays_plain_with_a_warning(
    layer_bundles: dict[str, Bundle],
) -> None:
    stack = cdk.Stack(cdk.App(), "Lacking")
    layer = CoverageLayer(stack, "Layer", compatible_runtimes=[lambda_.Runtime.PYTHON_3_12])
    function = InstrumentedFunction(
        stack,
        "F",
        bucket=CoverageBucket(stack, "C"),
        layer=layer,
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="app.handler",
        code=code(),
    )
    assert not function.instrumented
    properties = _layer_resource(stack, layer)  # synthesises: the layer is still there
    assert properties["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    resource = assertions.Template.from_stack(stack).to_json()["Resources"][logical_id(function)]
    assert resource["Properties"]["Handler"] == "app.handler"
    assert "Layers" not in resource["Properties"]
    assert "Environment" not in resource["Properties"]
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "/Lacking/F", assertions.Match.any_value()
    )
    assert [str(w.entry.data) for w in warnings] == [
        "Lambda Coverage left Lacking/F uninstrumented: the coverage layer Lacking/Layer carries "
        "python3.12, not python3.13. Add python3.13 to that layer's compatible_runtimes, or pass "
        "coverage_enabled=False to make it a plain function "
        "[ack: lambda-coverage:unsupported-python]"
    ]


@pytest.mark.parametrize(
    ("runtimes", "message"),
    [
        ([lambda_.Runtime.NODEJS_20_X], r"runtime 'nodejs20.x' is not a Python runtime"),
        ([lambda_.Runtime.PYTHON_3_9], r"Python '3.9' is not one of the Lambda runtimes"),
    ],
)
def test_runtimes_the_layer_cannot_serve_are_refused(
    runtimes: list[lambda_.Runtime], message: str
) -> None:
    with pytest.raises(LayerBuildError, match=message):
        CoverageLayer(cdk.Stack(cdk.App(), "Bad"), "Layer", compatible_runtimes=runtimes)


def test_for_stack_refuses_a_foreign_construct_under_its_id() -> None:
    stack = cdk.Stack(cdk.App(), "Taken")
    cdk.CfnOutput(stack, "LambdaCoverageLayerX8664", value="x")
    with pytest.raises(TypeError, match="exists but is not a CoverageLayer"):
        CoverageLayer.for_stack(stack)


def test_from_published_in_a_known_region() -> None:
    stack = cdk.Stack(cdk.App(), "Known", env=cdk.Environment(region="eu-west-1"))
    layer = CoverageLayer.from_published(
        stack, "Layer", version=4, architecture=lambda_.Architecture.ARM_64, account="111122223333"
    )
    assert stack.resolve(layer.layer_version_arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":lambda:eu-west-1:111122223333:layer:lambda-coverage-arm64:4",
            ],
        ]
    }
    by_region = CoverageLayer.from_published(
        stack, "ByRegion", version={"eu-west-1": 7, "us-east-1": 9}, account="111122223333"
    )
    assert stack.resolve(by_region.layer_version_arn)["Fn::Join"][1][-1] == (
        ":lambda:eu-west-1:111122223333:layer:lambda-coverage-x86_64:7"
    )
    with pytest.raises(ValueError, match=r"not published in ap-south-2; it is in eu-west-1"):
        CoverageLayer.from_published(
            stack, "Missing", version={"eu-west-1": 7}, region="ap-south-2", account="1"
        )


def test_from_published_in_an_env_agnostic_stack_uses_a_region_mapping() -> None:
    stack = cdk.Stack(cdk.App(), "Agnostic")
    layer = CoverageLayer.from_published(
        stack, "Layer", version={"eu-west-1": 7, "us-east-1": 9}, account="111122223333"
    )
    template = assertions.Template.from_stack(stack).to_json()
    (mapping,) = template["Mappings"].values()
    assert mapping == {"eu-west-1": {"version": "7"}, "us-east-1": {"version": "9"}}
    (mapping_id,) = template["Mappings"]
    assert stack.resolve(layer.layer_version_arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":lambda:",
                {"Ref": "AWS::Region"},
                ":111122223333:layer:lambda-coverage-x86_64:",
                {"Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, "version"]},
            ],
        ]
    }


def test_from_published_needs_the_publishers_account() -> None:
    with pytest.raises(ValueError, match=r"pass account= \(the account that published the layer"):
        CoverageLayer.from_published(cdk.Stack(cdk.App(), "NoAccount"), "Layer", version=1)
