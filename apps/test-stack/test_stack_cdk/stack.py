"""``TestStack``: the load test's functions instrumented by the aspect, on real AWS."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageCombiner,
    CoverageInstrumentation,
    CoverageLayer,
)
from coverage_cdk_constructs.nag import BASIC_EXECUTION_ROLE, acknowledge
from test_stack.aws_target import BUCKET_OUTPUT, FUNCTION_OUTPUTS
from test_stack.functions import CATALOGUE, LambdaFunction

#: The newest Python the wrapper's tests run on.
RUNTIME: Final = lambda_.Runtime.PYTHON_3_13


def function_code(function: LambdaFunction) -> lambda_.Code:
    """The same folder the local runtime uses as the task root."""
    return lambda_.Code.from_asset(
        str(function.code_dir), exclude=["__pycache__", "*.pyc", ".mypy_cache"]
    )


def construct_id(name: str) -> str:
    """``example-simple`` as ``ExampleSimple``."""
    return "".join(part.title() for part in name.split("-"))


class TestStack(cdk.Stack):
    """Every function of the load test's catalogue, zero-code instrumented by the aspect.

    The functions are plain ``lambda_.Function``s, as in a stack that
    exists already; ``CoverageInstrumentation`` instruments them at
    synthesis. The bucket is emptied and deleted with the stack (a test
    stack); the combiner merges on every upload and every 15 minutes.
    """

    def __init__(self, scope: Construct, construct_id_: str, **props: object) -> None:
        super().__init__(scope, construct_id_, **props)  # type: ignore[arg-type]
        self.bucket = CoverageBucket(
            self, "Coverage", removal_policy=cdk.RemovalPolicy.DESTROY, auto_delete_objects=True
        )
        self.layer = CoverageLayer(self, "CoverageLayer", compatible_runtimes=[RUNTIME])
        self.functions: dict[str, lambda_.Function] = {}
        for name, function in CATALOGUE.items():
            self.functions[name] = lambda_.Function(
                self,
                construct_id(name),
                runtime=RUNTIME,
                handler=function.handler,
                code=function_code(function),
                environment=dict(function.environment),
                memory_size=function.memory_mb,
                timeout=cdk.Duration.seconds(int(function.timeout)),
            )
            cdk.CfnOutput(self, FUNCTION_OUTPUTS[name], value=self.functions[name].function_name)
        self.combiner = CoverageCombiner(
            self,
            "Combiner",
            bucket=self.bucket,
            s3_trigger=True,
            schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
        )
        cdk.CfnOutput(self, BUCKET_OUTPUT, value=self.bucket.bucket.bucket_name)
        # Every function is x86_64, so one layer serves them all (a function
        # of another architecture would fail the synthesis, named).
        cdk.Aspects.of(self).add(
            CoverageInstrumentation(bucket=self.bucket, layer=self.layer),
            priority=cdk.AspectPriority.MUTATING,
        )
        # Lambda Coverage's own findings (the aspect's policies, the combiner,
        # the S3 trigger's notifications handler) are acknowledged where made.
        self._acknowledge_test_findings()

    def _acknowledge_test_findings(self) -> None:
        """cdk-nag findings this test stack accepts, each with its reason."""
        for function in self.functions.values():
            assert function.role is not None
            acknowledge(
                function.role,
                f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]",
                "CloudWatch Logs only: the standard Lambda execution policy",
            )
            acknowledge(
                function,
                "AwsSolutions-L1",
                "Python 3.13 is the newest runtime the wrapper's tests run on",
            )
        acknowledge(
            self.bucket.bucket,
            "AwsSolutions-S1",
            "Test stack: only its own functions write here, each to its own folder, "
            "and the bucket is deleted with the stack",
        )
