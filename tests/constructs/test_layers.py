"""A layer per function architecture: CoverageLayers, published layers that know their CPU,
the README's first example on a stack with both architectures, region tables' fallback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_
from cdk_nag import AwsSolutionsChecks

import coverage_cdk_constructs
from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageInstrumentation,
    CoverageLayer,
    CoverageLayers,
    InstrumentedFunction,
    LayerArchitectureError,
)
from coverage_cdk_constructs.bundle import Bundle
from coverage_cdk_constructs.nag import BASIC_EXECUTION_ROLE, acknowledge
from tests.constructs.conftest import code
from tests.constructs.templates import logical_id, render
from tests.constructs.test_apps import synthesise

README = Path(coverage_cdk_constructs.__file__).parents[2] / "README.md"
PUBLISHER = "111122223333"
ARM = lambda_.Architecture.ARM_64
X86 = lambda_.Architecture.X86_64


def _function(scope: cdk.Stack, name: str, architecture: lambda_.Architecture) -> lambda_.Function:
    return lambda_.Function(
        scope,
        name,
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=architecture,
        handler=f"{name.lower()}.handler",
        code=code(),
    )


def _layers_of(stack: cdk.Stack, function: lambda_.Function) -> list[Any]:
    resources = assertions.Template.from_stack(stack).to_json()["Resources"]
    layers: list[Any] = render(resources[logical_id(function)]["Properties"].get("Layers", []))
    return layers


def test_the_readmes_first_example_works_on_both_architectures_with_cdk_nag(
    layer_bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    """The first code block of the README, as written, next to existing arm64 and x86_64 code."""
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert example is not None
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Readme")
    existing = {"Arm": _function(stack, "Arm", ARM), "X86": _function(stack, "X86", X86)}
    namespace: dict[str, Any] = {
        "self": stack,
        "code": code(),
        "lambda_": lambda_,
        "Aspects": cdk.Aspects,
        "AspectPriority": cdk.AspectPriority,
        **{
            name: getattr(coverage_cdk_constructs, name) for name in coverage_cdk_constructs.__all__
        },
    }
    exec(example.group(1), namespace)  # noqa: S102 - the README's own example, verbatim
    orders = stack.node.find_child("Orders")
    assert isinstance(orders, lambda_.Function)
    for function in [*existing.values(), orders]:
        reason = "The example's own function"
        acknowledge(function, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", reason)
        acknowledge(function, "AwsSolutions-L1", reason)
    acknowledge(stack.node.find_child("Coverage"), "AwsSolutions-S1", "The example's bucket")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    failure, violations = synthesise(app, tmp_path)
    assert violations == [], json.dumps(violations, indent=1)[:4000]
    assert failure is None
    built = {
        architecture: logical_id(stack.node.find_child(f"LambdaCoverageLayer{suffix}"))
        for architecture, suffix in (("arm64", "Arm64"), ("x86_64", "X8664"))
    }
    assert _layers_of(stack, existing["Arm"]) == [f"<{built['arm64']}>"]
    assert _layers_of(stack, orders) == [f"<{built['arm64']}>"]
    assert _layers_of(stack, existing["X86"]) == [f"<{built['x86_64']}>"]


def test_a_published_layer_of_the_other_architecture_fails_the_synth_naming_the_function() -> None:
    stack = cdk.Stack(cdk.App(), "OneLayer", env=cdk.Environment(region="eu-west-1"))
    layer = CoverageLayer.from_published(stack, "Published", version=4, account=PUBLISHER)
    _function(stack, "Arm", ARM)
    x86 = _function(stack, "X86", X86)
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=CoverageBucket(stack, "Coverage"), layer=layer),
        priority=cdk.AspectPriority.MUTATING,
    )
    with pytest.raises(RuntimeError) as failed:
        assertions.Template.from_stack(stack)
    message = str(failed.value)
    assert (
        "[OneLayer/Arm] LayerArchitectureError: OneLayer/Arm runs on arm64 but the layer "
        "OneLayer/Published is built for x86_64: pass layer=CoverageLayers(x86_64=..., "
        "arm64=...), CoverageLayers.published(...) or CoverageLayers.build(...)"
    ) in message
    assert "OneLayer/X86" not in message
    assert x86.node.try_find_child("LambdaCoverage") is not None
    with pytest.raises(LayerArchitectureError, match=r"OneLayer/F runs on arm64 but the layer"):
        InstrumentedFunction(
            stack,
            "F",
            bucket=CoverageBucket(stack, "Other"),
            layer=layer,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=ARM,
            handler="app.handler",
            code=code(),
        )


def test_a_family_without_the_functions_architecture_fails_the_synth_naming_it() -> None:
    stack = cdk.Stack(cdk.App(), "NoArm", env=cdk.Environment(region="eu-west-1"))
    layers = CoverageLayers.published(
        stack, "Layers", version=4, account=PUBLISHER, architectures=[X86]
    )
    _function(stack, "Arm", ARM)
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=CoverageBucket(stack, "Coverage"), layer=layers),
        priority=cdk.AspectPriority.MUTATING,
    )
    with pytest.raises(
        RuntimeError,
        match=r"\[NoArm/Arm\] LayerArchitectureError: NoArm/Arm runs "
        r"on arm64 but CoverageLayers\(x86_64=NoArm/LayersX8664\) has no arm64 layer",
    ):
        assertions.Template.from_stack(stack)


def test_a_layer_given_for_the_wrong_architecture_is_refused_at_once() -> None:
    stack = cdk.Stack(cdk.App(), "Swapped", env=cdk.Environment(region="eu-west-1"))
    arm = CoverageLayer.from_published(stack, "Arm", version=4, architecture=ARM, account=PUBLISHER)
    with pytest.raises(
        LayerArchitectureError,
        match=r"CoverageLayers\(x86_64=Swapped/Arm\): that layer is built for arm64; pass it as "
        r"arm64= instead",
    ):
        CoverageLayers(x86_64=arm)


def test_published_versions_per_architecture_and_region() -> None:
    stack = cdk.Stack(cdk.App(), "Versions", env=cdk.Environment(region="eu-west-1"))
    layers = CoverageLayers.published(
        stack,
        "Layers",
        version={"x86_64": {"eu-west-1": 7}, "arm64": 9},
        account=PUBLISHER,
    )
    assert layers.x86_64 is not None
    assert layers.arm64 is not None
    arns = [render(stack.resolve(lay.layer_version_arn)) for lay in (layers.x86_64, layers.arm64)]
    assert arns == [
        f"arn:<AWS::Partition>:lambda:eu-west-1:{PUBLISHER}:layer:lambda-coverage-x86_64:7",
        f"arn:<AWS::Partition>:lambda:eu-west-1:{PUBLISHER}:layer:lambda-coverage-arm64:9",
    ]
    layers.arm64.add_permission("Org", account_id="*", organization_id="o-abc")
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::LayerVersionPermission",
        {"Action": "lambda:GetLayerVersion", "Principal": "*", "OrganizationId": "o-abc"},
    )


def test_a_built_family_builds_only_the_architectures_its_functions_use(
    layer_bundles: dict[str, Bundle],
) -> None:
    stack = cdk.Stack(cdk.App(), "Family")
    layers = CoverageLayers.build(stack, "Coverage")
    bucket = CoverageBucket(stack, "Bucket")
    function = InstrumentedFunction(
        stack,
        "Orders",
        bucket=bucket,
        layer=layers,
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="app.handler",
        code=code(),
    )
    assert layers.arm64 is None
    assert isinstance(layers.x86_64, CoverageLayer)
    assert layers.x86_64.node.path == "Family/CoverageX8664"
    assert _layers_of(stack, function) == [f"<{logical_id(layers.x86_64)}>"]
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)


def test_a_region_table_falls_back_to_a_default_version_in_an_env_agnostic_stack() -> None:
    stack = cdk.Stack(cdk.App(), "Agnostic")
    layer = CoverageLayer.from_published(
        stack, "Layer", version={"eu-west-1": 7}, account=PUBLISHER, default_version=5
    )
    function = _function(stack, "F", X86)
    function.add_layers(layer)
    template = assertions.Template.from_stack(stack).to_json()
    # Fn::FindInMap's DefaultValue needs the language extensions.
    assert template["Transform"] == "AWS::LanguageExtensions"
    (mapping_id,) = template["Mappings"]
    (arn,) = template["Resources"][logical_id(function)]["Properties"]["Layers"]
    assert arn["Fn::Join"][1][-1] == {
        "Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, "version", {"DefaultValue": "5"}]
    }
    known = cdk.Stack(cdk.App(), "Known", env=cdk.Environment(region="ap-south-2"))
    elsewhere = CoverageLayer.from_published(
        known, "Layer", version={"eu-west-1": 7}, account=PUBLISHER, default_version=5
    )
    assert known.resolve(elsewhere.layer_version_arn)["Fn::Join"][1][-1].endswith(
        ":layer:lambda-coverage-x86_64:5"
    )


def test_a_region_table_without_fallback_warns_that_other_regions_fail() -> None:
    stack = cdk.Stack(cdk.App(), "NoFallback")
    CoverageLayer.from_published(
        stack, "Layer", version={"eu-west-1": 7, "us-east-1": 9}, account=PUBLISHER
    )
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("environment-agnostic")
    )
    assert [(w.id, str(w.entry.data)) for w in warnings] == [
        (
            "/NoFallback/Layer",
            "Lambda Coverage: NoFallback is environment-agnostic, so this layer's version is "
            "looked up by region at deploy time; it is published in eu-west-1, us-east-1 only, "
            "and a deployment elsewhere fails. Pass default_version= for other regions, or give "
            "the stack an env with its region [ack: lambda-coverage:region-table]",
        )
    ]


def test_the_layers_of_a_release_manifest_by_name_version_and_region(tmp_path: Path) -> None:
    from coverage_cdk_constructs.manifest import RegionEntry, update_manifest

    manifest = tmp_path / "layers.json"
    for architecture, name, versions in (
        ("x86_64", "lambda-coverage-x86_64", {"eu-west-1": 4, "us-east-1": 5}),
        ("arm64", "team-coverage-arm", {"eu-west-1": 6}),
    ):
        update_manifest(
            manifest,
            architecture,
            name,
            [
                RegionEntry(
                    region,
                    f"arn:aws:lambda:{region}:{PUBLISHER}:layer:{name}:{version}",
                    version,
                    "0" * 64,
                    "0.1.0",
                )
                for region, version in versions.items()
            ],
        )
    stack = cdk.Stack(cdk.App(), "FromManifest", env=cdk.Environment(region="eu-west-1"))
    layers = CoverageLayers.from_manifest(stack, "Layers", manifest)
    assert layers.x86_64 is not None
    assert layers.arm64 is not None
    arns = [render(stack.resolve(lay.layer_version_arn)) for lay in (layers.x86_64, layers.arm64)]
    assert arns == [
        f"arn:<AWS::Partition>:lambda:eu-west-1:{PUBLISHER}:layer:lambda-coverage-x86_64:4",
        f"arn:<AWS::Partition>:lambda:eu-west-1:{PUBLISHER}:layer:team-coverage-arm:6",
    ]
    elsewhere = cdk.Stack(cdk.App(), "Elsewhere", env=cdk.Environment(region="us-east-1"))
    x86_only = CoverageLayers.from_manifest(
        elsewhere, "Layers", manifest, architectures=[lambda_.Architecture.X86_64]
    )
    assert x86_only.arm64 is None
    assert x86_only.x86_64 is not None
    x86_arn = render(elsewhere.resolve(x86_only.x86_64.layer_version_arn))
    assert x86_arn.endswith(f":{PUBLISHER}:layer:lambda-coverage-x86_64:5")
    us_stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(
        ValueError,
        match=r"LayersArm64: the layer is not published in us-east-1; it is in eu-west-1 ",
    ):
        CoverageLayers.from_manifest(us_stack, "Layers", manifest)
    with pytest.raises(ValueError, match="lists no published layer"):
        CoverageLayers.from_manifest(stack, "None", tmp_path / "missing.json")
