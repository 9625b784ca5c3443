"""``TestStack``: the load test's functions as InstrumentedFunctions, on real AWS."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageCombiner,
    CoverageLayer,
    InstrumentedFunction,
)
from coverage_cdk_constructs.nag import (
    BASIC_EXECUTION_ROLE,
    acknowledge,
    acknowledge_coverage_findings,
)
from test_stack.functions import CATALOGUE, LambdaFunction
from test_stack.loadtest import BUCKET_OUTPUT, FUNCTION_OUTPUTS

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
    """Every function of the load test's catalogue, zero-code instrumented.

    The bucket is emptied and deleted with the stack (a test stack); the
    combiner merges on every upload and every 15 minutes.
    """

    def __init__(self, scope: Construct, construct_id_: str, **props: object) -> None:
        super().__init__(scope, construct_id_, **props)  # type: ignore[arg-type]
        self.bucket = CoverageBucket(
            self, "Coverage", removal_policy=cdk.RemovalPolicy.DESTROY, auto_delete_objects=True
        )
        self.layer = CoverageLayer(self, "CoverageLayer", compatible_runtimes=[RUNTIME])
        self.functions: dict[str, InstrumentedFunction] = {}
        for name, function in CATALOGUE.items():
            self.functions[name] = InstrumentedFunction(
                self, construct_id(name), bucket=self.bucket, layer=self.layer, runtime=RUNTIME,
                handler=function.handler, code=function_code(function),
                environment=dict(function.environment), memory_size=function.memory_mb,
                timeout=cdk.Duration.seconds(int(function.timeout)),
            )  # fmt: skip
            cdk.CfnOutput(self, FUNCTION_OUTPUTS[name], value=self.functions[name].function_name)
        self.combiner = CoverageCombiner(
            self, "Combiner", bucket=self.bucket, s3_trigger=True,
            schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
        )  # fmt: skip
        cdk.CfnOutput(self, BUCKET_OUTPUT, value=self.bucket.bucket.bucket_name)
        acknowledge_coverage_findings(self)
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
        acknowledge(self.bucket.bucket, "AwsSolutions-S1",
                    "Test stack: only its own functions write here, each to its own folder, "
                    "and the bucket is deleted with the stack")  # fmt: skip
        # The S3 trigger's notification handler is aws-cdk-lib's own singleton.
        handler = self.node.try_find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        if handler is not None:
            acknowledge(
                handler,
                f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]",
                "aws-cdk-lib's bucket-notifications handler: CloudWatch Logs only",
            )
            acknowledge(handler, "AwsSolutions-IAM5[Resource::*]",
                        "aws-cdk-lib's bucket-notifications handler sets the notification "
                        "configuration of the bucket it is given")  # fmt: skip
