"""The constructs, the wrapper and the combiner agree on the S3 key layout.

From one synthesised stack: the environment the constructs give a function is
read by the wrapper's own configuration, the key the wrapper renders from it
matches the grant the constructs wrote into that function's policy (and not
the grant of a function whose name starts the same), and the combiner, with
the environment the constructs give it, reads those keys back to the same
fields and picks and filters by them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_

from coverage_cdk_constructs import CoverageBucket, CoverageCombiner, InstrumentedFunction
from coverage_cdk_constructs.bundle import Bundle
from coverage_combiner import CombineOptions, combine
from coverage_wrapper.config import WrapperConfig, load_config
from coverage_wrapper.data_labels import probe_key
from coverage_wrapper.keys import KeyFields, KeyTemplate, ParsedKey
from tests.combiner.conftest import write_data
from tests.constructs.conftest import code, imported_layer
from tests.constructs.templates import logical_id
from tests.iam_patterns import iam_regex

NAMES = ("orders", "orders-v2")
WHEN = datetime(2026, 11, 25, 13, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def synthesised(combiner_bundle: Bundle) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Per function: its environment and its grant's object pattern; the combiner's environment."""
    stack = cdk.Stack(cdk.App(), "Contract")
    bucket = CoverageBucket(stack, "Coverage", raw_prefix="raw")
    layer = imported_layer(stack)
    functions = {
        name: InstrumentedFunction(
            stack,
            name.replace("-", ""),
            bucket=bucket,
            layer=layer,
            function_name=name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=code(),
        )
        for name in NAMES
    }
    combiner = CoverageCombiner(stack, "Combiner", bucket=bucket)
    resources = assertions.Template.from_stack(stack).to_json()["Resources"]
    names = {logical_id(f): name for name, f in functions.items()}
    environments = {
        name: resources[logical_id(f)]["Properties"]["Environment"]["Variables"]
        for name, f in functions.items()
    }
    patterns = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] != "s3:PutObject":
                continue
            # [bucket ARN, "/raw/????/??/??/", {"Ref": function}, "/*"]
            bucket_arn, *rest = statement["Resource"]["Fn::Join"][1]
            if not any(isinstance(p, dict) and p.get("Ref") in names for p in rest):
                continue  # the combiner's grant to write reports
            assert bucket_arn == {"Fn::GetAtt": [logical_id(bucket.bucket), "Arn"]}
            # A function's Ref is its name (given here, so known before deployment).
            text = "".join(names[p["Ref"]] if isinstance(p, dict) else p for p in rest)
            patterns[text.split("/")[-2]] = text.removeprefix("/")
    combiner_env = resources[logical_id(combiner.function)]["Properties"]["Environment"]
    return environments, patterns, combiner_env["Variables"]


def function_config(environment: dict[str, Any], function: str) -> WrapperConfig:
    """The wrapper's configuration in a function deployed with ``environment``."""
    settings = {k: v for k, v in environment.items() if isinstance(v, str)}
    config = load_config(
        {**settings, "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_REGION": "eu-west-1"}
    )
    assert config.problems == ()
    return config


def wrapper_key(environment: dict[str, Any], function: str, pid: int, seq: int) -> str:
    """The key the wrapper writes in a function deployed with ``environment``."""
    config = function_config(environment, function)
    fields = KeyFields(
        config.s3_prefix,
        WHEN,
        config.function_name,
        config.function_version,
        config.region,
        "0123456789abcdef",
        pid,
        seq,
        config.run_id,
    )
    return KeyTemplate.parse_template(config.key_template).render(fields)


def wrapper_probe_key(environment: dict[str, Any], function: str) -> str:
    """The health probe's key the wrapper writes in a function deployed with ``environment``."""
    return probe_key(function_config(environment, function))


def test_each_grant_matches_its_functions_keys_and_no_other(
    synthesised: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
) -> None:
    environments, patterns, _ = synthesised
    assert set(patterns) == set(NAMES)
    assert patterns["orders"] == "raw/????/??/??/orders/*"
    for name in NAMES:
        own = wrapper_key(environments[name], name, pid=7, seq=1)
        probe = wrapper_probe_key(environments[name], name)
        for written in (own, probe):
            assert iam_regex(patterns[name]).fullmatch(written), (patterns[name], written)
            for other in set(NAMES) - {name}:
                assert not iam_regex(patterns[other]).fullmatch(written), (patterns[other], written)


def test_the_combiner_reads_those_keys_to_the_same_fields(
    synthesised: tuple[dict[str, Any], dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    environments, _, combiner_env = synthesised
    template = combiner_env["COVERAGE_S3_KEY_TEMPLATE"]
    assert {env["COVERAGE_S3_KEY_TEMPLATE"] for env in environments.values()} == {template}
    key = wrapper_key(environments["orders"], "orders", pid=7, seq=3)
    assert KeyTemplate.parse_template(template).parse(key) == ParsedKey(
        prefix=combiner_env["COVERAGE_S3_PREFIX"],
        function="orders",
        container="0123456789abcdef",
        pid=7,
        seq=3,
        day=WHEN.date(),
        version="LATEST",
    )
    # And the combiner acts on them: newest snapshot per process, one function.
    for name, seq, lines in (("orders", 1, {1}), ("orders", 2, {1, 2}), ("orders-v2", 1, {9})):
        written = wrapper_key(environments[name], name, pid=7, seq=seq)
        write_data(tmp_path / "bucket" / written, lines={f"{name}@$LATEST": {"app.py": lines}})
    result = combine(
        [str(tmp_path / "bucket")], CombineOptions(key_template=template, function="orders")
    )
    assert (result.superseded, len(result.merged.inputs)) == (1, 1)
    assert result.merged.lines_by_file() == {"app.py": {1, 2}}
