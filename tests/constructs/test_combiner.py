"""CoverageCombiner: its function, schedule, S3 trigger, and a policy that cannot re-trigger it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from coverage_cdk_constructs import (
    CombinerPlacementError,
    CoverageBucket,
    CoverageCombiner,
    CoverageInstrumentation,
)
from coverage_cdk_constructs.bundle import Bundle
from coverage_cdk_constructs.nag import acknowledge
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE
from coverage_wrapper.limits import (
    MAX_INPUT_BYTES,
    MEMORY_BASE_MIB,
    MEMORY_PER_INPUT_BYTE,
    combiner_memory_mb,
    combiner_processes,
    process_peak_mib,
)
from tests.constructs.conftest import imported_layer
from tests.constructs.templates import logical_id, render, role_id, statements_for_role
from tests.constructs.test_apps import synthesise


@pytest.fixture(scope="module")
def triggered(combiner_bundle: Bundle) -> tuple[dict[str, str], assertions.Template]:
    """A combiner on the default schedule and on uploads, under the instrumentation aspect."""
    stack = cdk.Stack(cdk.App(), "Combined")
    bucket = CoverageBucket(stack, "Coverage", raw_prefix="raw/", combined_prefix="reports/")
    combiner = CoverageCombiner(stack, "Combiner", bucket=bucket, s3_trigger=True)
    cdk.Aspects.of(stack).add(
        CoverageInstrumentation(bucket=bucket, layer=imported_layer(stack)),
        priority=cdk.AspectPriority.MUTATING,
    )
    ids = {
        "Function": logical_id(combiner.function),
        "Role": role_id(combiner.function),
        "Bucket": logical_id(bucket.bucket),
    }
    assert combiner.rule is not None
    ids["Rule"] = logical_id(combiner.rule)
    assert combiner.bundle.path == combiner_bundle.path
    return ids, assertions.Template.from_stack(stack)


def test_the_function_runs_the_combiner_with_its_prefixes_and_is_not_instrumented(
    triggered: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = triggered
    properties = template.to_json()["Resources"][ids["Function"]]["Properties"]
    assert properties["Handler"] == "coverage_combiner.lambda_handler.handler"
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert (properties["MemorySize"], properties["Timeout"]) == (1024, 300)
    assert properties["Environment"] == {
        "Variables": {
            "COVERAGE_S3_BUCKET": {"Ref": ids["Bucket"]},
            "COVERAGE_S3_PREFIX": "raw/",
            "COVERAGE_COMBINED_PREFIX": "reports/",
            "COVERAGE_S3_KEY_TEMPLATE": DEFAULT_KEY_TEMPLATE,
        }
    }
    assert "Layers" not in properties


def test_it_reads_both_prefixes_and_writes_only_reports(
    triggered: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = triggered
    arn = f"<{ids['Bucket']}.Arn>"
    assert statements_for_role(template, ids["Role"]) == [
        {
            "Action": ["s3:GetObject"],
            "Effect": "Allow",
            "Resource": [f"{arn}/raw/*", f"{arn}/reports/*"],
        },
        {"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": [arn]},
        {"Action": ["s3:PutObject"], "Effect": "Allow", "Resource": [f"{arn}/reports/*"]},
    ]


def test_uploads_of_data_files_under_the_raw_prefix_trigger_it(
    triggered: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = triggered
    (notifications,) = template.find_resources("Custom::S3BucketNotifications").values()
    configuration = render(notifications["Properties"]["NotificationConfiguration"])
    assert configuration == {
        "LambdaFunctionConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "suffix", "Value": ".coverage"},
                            {"Name": "prefix", "Value": "raw/"},
                        ]
                    }
                },
                "LambdaFunctionArn": f"<{ids['Function']}.Arn>",
            }
        ]
    }
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [ids["Function"], "Arn"]},
        },
    )


def test_it_runs_every_hour_by_default(
    triggered: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = triggered
    rule: dict[str, Any] = template.to_json()["Resources"][ids["Rule"]]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [ids["Function"], "Arn"]}]


def test_schedule_and_sizing_props(combiner_bundle: Bundle) -> None:
    stack = cdk.Stack(cdk.App(), "Props")
    bucket = CoverageBucket(stack, "Coverage")
    combiner = CoverageCombiner(
        stack,
        "Combiner",
        bucket=bucket,
        schedule=events.Schedule.cron(minute="0", hour="6"),
        memory_size=2048,
        timeout=cdk.Duration.minutes(12),
        reserved_concurrent_executions=1,
    )
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "cron(0 6 * * ? *)"}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "MemorySize": 2048,
            "Timeout": 720,
            "ReservedConcurrentExecutions": 1,
            "Handler": "coverage_combiner.lambda_handler.handler",
        },
    )
    template.resource_count_is("Custom::S3BucketNotifications", 0)
    assert combiner.rule is not None


def test_nothing_to_run_it_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    bucket = CoverageBucket(stack, "Coverage")
    with pytest.raises(ValueError, match="schedule=None and s3_trigger=False would never run"):
        CoverageCombiner(stack, "Idle", bucket=bucket, schedule=None)


def test_another_python_gets_a_bundle_built_for_it(combiner_bundle: Bundle) -> None:
    stack = cdk.Stack(cdk.App(), "Py312")
    combiner = CoverageCombiner(
        stack,
        "Combiner",
        bucket=CoverageBucket(stack, "Coverage"),
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=lambda_.Architecture.X86_64,
    )
    assert "coverage/tracer.cpython-312-x86_64-linux-gnu.so" in combiner.bundle.names()
    assert combiner.bundle.fingerprint != combiner_bundle.fingerprint


def test_any_ibucket_is_accepted_with_the_default_prefixes(combiner_bundle: Bundle) -> None:
    stack = cdk.Stack(cdk.App(), "Plain")
    plain = s3.Bucket.from_bucket_name(stack, "Team", "team-coverage")
    combiner = CoverageCombiner(stack, "Combiner", bucket=plain)
    assert combiner.bucket.bucket is plain
    template = assertions.Template.from_stack(stack)
    properties = template.to_json()["Resources"][logical_id(combiner.function)]["Properties"]
    assert properties["Environment"]["Variables"] == {
        "COVERAGE_S3_BUCKET": "team-coverage",
        "COVERAGE_S3_PREFIX": "coverage/",
        "COVERAGE_COMBINED_PREFIX": "coverage-combined/",
        "COVERAGE_S3_KEY_TEMPLATE": DEFAULT_KEY_TEMPLATE,
    }
    arn = "arn:<AWS::Partition>:s3:::team-coverage"
    assert statements_for_role(template, role_id(combiner.function)) == [
        {
            "Action": ["s3:GetObject"],
            "Effect": "Allow",
            "Resource": [f"{arn}/coverage-combined/*", f"{arn}/coverage/*"],
        },
        {"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": [arn]},
        {"Action": ["s3:PutObject"], "Effect": "Allow", "Resource": [f"{arn}/coverage-combined/*"]},
    ]


def test_an_s3_trigger_in_another_stack_uses_eventbridge_without_a_cycle(
    combiner_bundle: Bundle, tmp_path: Path
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    data = cdk.Stack(app, "Data")
    bucket = CoverageBucket(data, "Coverage")
    tools = cdk.Stack(app, "Tools")
    combiner = CoverageCombiner(tools, "Combiner", bucket=bucket, s3_trigger=True)
    acknowledge(bucket.bucket, "AwsSolutions-S1", "No access logs in this test")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # A dependency cycle between the stacks would fail here; the handler
    # aws-cdk-lib adds to the bucket's stack has its findings acknowledged.
    failure, violations = synthesise(app, tmp_path)
    assert violations == [], violations
    assert failure is None
    assert [s.node.path for s in tools.dependencies] == ["Data"]
    assert data.dependencies == []
    assert combiner.upload_rule is not None
    rules = assertions.Template.from_stack(tools).to_json()["Resources"]
    rule = rules[logical_id(combiner.upload_rule)]["Properties"]
    pattern = rule["EventPattern"]
    (bucket_name,) = pattern["detail"]["bucket"]["name"]
    assert set(bucket_name) == {"Fn::ImportValue"}  # the bucket of the other stack
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"wildcard": "coverage/*.coverage"}]},
        },
    }
    assert [t["Arn"] for t in rule["Targets"]] == [
        {"Fn::GetAtt": [logical_id(combiner.function), "Arn"]}
    ]
    (notifications,) = (
        assertions.Template.from_stack(data)
        .find_resources("Custom::S3BucketNotifications")
        .values()
    )
    assert notifications["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {}
    }


def test_an_imported_bucket_of_another_stack_says_where_to_put_the_combiner(
    combiner_bundle: Bundle,
) -> None:
    app = cdk.App()
    data = cdk.Stack(app, "Data")
    imported = s3.Bucket.from_bucket_name(data, "Imported", "team-coverage")
    with pytest.raises(
        CombinerPlacementError,
        match=r"Tools/Combiner: s3_trigger=True with the bucket Data/Imported of another stack "
        r"\(Data\) that is imported, so its notifications cannot be set from here: put the "
        r"combiner in the bucket's stack, or use the schedule alone \(s3_trigger=False\)",
    ):
        CoverageCombiner(cdk.Stack(app, "Tools"), "Combiner", bucket=imported, s3_trigger=True)


def test_the_default_memory_holds_one_merging_process_with_an_input_of_the_size_cap(
    triggered: tuple[dict[str, str], assertions.Template],
) -> None:
    ids, template = triggered
    memory_mb = template.to_json()["Resources"][ids["Function"]]["Properties"]["MemorySize"]
    # Computed from the cap and the bound, not written down: a larger cap or K
    # moves it.
    assert memory_mb == combiner_memory_mb(MAX_INPUT_BYTES)
    assert combiner_memory_mb(2 * MAX_INPUT_BYTES) > memory_mb
    peak_mib = MEMORY_BASE_MIB + (MEMORY_PER_INPUT_BYTE + 1) * MAX_INPUT_BYTES / 2**20
    assert peak_mib * 2**20 <= memory_mb * 1_000_000
    # And the function it makes merges with as many processes as that holds: one.
    assert combiner_processes(memory_mb, cpus=2) == 1


def test_less_memory_than_one_merging_process_needs_is_a_synth_warning(
    combiner_bundle: Bundle,
) -> None:
    stack = cdk.Stack(cdk.App(), "Small")
    CoverageCombiner(stack, "Combiner", bucket=CoverageBucket(stack, "Coverage"), memory_size=512)
    CoverageCombiner(stack, "Enough", bucket=CoverageBucket(stack, "Other"))

    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("memory_size")
    )

    needed = -(-process_peak_mib() * 2**20 // 1_000_000)
    assert [(w.id, str(w.entry.data)) for w in warnings] == [
        (
            "/Small/Combiner",
            f"memory_size=512 MB holds less than one data file of the combiner's 64 MiB size "
            f"cap needs ({needed} MB): a large input can end the function out of memory. Give "
            f"at least {needed} MB, or leave the default [ack: lambda-coverage:combiner-memory]",
        )
    ]
