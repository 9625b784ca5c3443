"""``ExamplesStack``: every usage pattern, instrumented by the constructs."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageCombiner,
    CoverageInstrumentation,
    CoverageLayers,
    InstrumentedFunction,
)
from coverage_cdk_constructs.nag import BASIC_EXECUTION_ROLE, acknowledge

FUNCTIONS_DIR: Final = Path(__file__).resolve().parent.parent / "functions"
#: The newest Python the wrapper's tests run on here.
RUNTIME: Final = lambda_.Runtime.PYTHON_3_13
PRODUCTION_STAGES: Final = frozenset({"prod", "production"})


def function_code(folder: str) -> lambda_.Code:
    """The code asset of one example function's folder."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR / folder), exclude=["__pycache__", "*.pyc", ".mypy_cache"]
    )


class ExamplesStack(cdk.Stack):
    """One function per usage pattern, a health check behind API Gateway, a scheduled combiner.

    The patterns are InstrumentedFunctions; an existing arm64 function is
    instrumented by the aspect, with the same layers (one per architecture).

    :param stage: ``prod``/``production`` turns coverage off for the
        advanced example (environment-based enabling). Default ``dev``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: str = "dev", **props: object
    ) -> None:
        super().__init__(scope, construct_id, **props)  # type: ignore[arg-type]
        # An example stack: its data goes with it on `cdk destroy`.
        self.bucket = CoverageBucket(
            self, "Coverage", removal_policy=cdk.RemovalPolicy.DESTROY, auto_delete_objects=True
        )
        # One layer per architecture, each built when a function needs it.
        self.layers = CoverageLayers.build(self, "CoverageLayer")

        # 1. Zero code change: the handler is redirected to the wrapper.
        self.simple = self._function("Simple", "simple")
        # 2. @coverage_handler in the code.
        self.decorator = self._function("Decorator", "decorator", coverage_mode="decorator")
        # 3. with CoverageContext(): around one block.
        self.context_manager = self._function(
            "ContextManager", "context_manager", coverage_mode="decorator"
        )
        # 4. A health route behind API Gateway.
        self.health = self._function("Health", "health", coverage_mode="decorator")
        self.api = self._api(self.health)
        # 5. Sampling, and coverage only outside production.
        self.advanced = self._function(
            "Advanced",
            "advanced",
            sample_rate=0.1,
            coverage_enabled=stage not in PRODUCTION_STAGES,
        )
        # 6. A function as it already is (arm64, plain lambda_.Function): the
        #    aspect below instruments it, and every other Python function that
        #    is not an InstrumentedFunction.
        self.existing = lambda_.Function(
            self,
            "Existing",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.handler",
            code=function_code("simple"),
        )
        cdk.Aspects.of(self).add(
            CoverageInstrumentation(bucket=self.bucket, layer=self.layers),
            priority=cdk.AspectPriority.MUTATING,
        )
        # 7. The combiner, every hour (never instrumented).
        self.combiner = CoverageCombiner(
            self,
            "Combiner",
            bucket=self.bucket,
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
        )

        cdk.CfnOutput(self, "CoverageBucketName", value=self.bucket.bucket.bucket_name)
        cdk.CfnOutput(self, "HealthUrl", value=self.api.url_for_path("/health"))
        # Lambda Coverage's own findings are acknowledged where it makes them.
        self._acknowledge_example_findings()

    def _function(
        self,
        construct_id: str,
        folder: str,
        *,
        coverage_mode: str = "zero-code",
        sample_rate: float = 1.0,
        coverage_enabled: bool = True,
    ) -> InstrumentedFunction:
        return InstrumentedFunction(
            self,
            construct_id,
            bucket=self.bucket,
            layer=self.layers,
            runtime=RUNTIME,
            handler="app.handler",
            code=function_code(folder),
            coverage_mode=coverage_mode,
            sample_rate=sample_rate,
            coverage_enabled=coverage_enabled,
        )

    def _acknowledge_example_findings(self) -> None:
        """cdk-nag findings this example accepts, each with its reason."""
        functions = [
            self.simple,
            self.decorator,
            self.context_manager,
            self.health,
            self.advanced,
            self.existing,
        ]
        for function in functions:
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
            "Example stack: only its own functions write here, each to its own folder; "
            "production stacks add server_access_logs_bucket through bucket_props",
        )
        acknowledge(
            self.api, "AwsSolutions-APIG2", "GET routes without a request body: nothing to validate"
        )
        acknowledge(
            self.api, "AwsSolutions-APIG3", "Example API: no WAF web ACL in front of a health route"
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "The example's health and hello routes are public by design",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "The example's health and hello routes are public by design",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-wide logging role uses the managed policy made for it",
        )

    def _api(self, function: lambda_.IFunction) -> apigateway.RestApi:
        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        api = apigateway.LambdaRestApi(
            self,
            "Api",
            handler=function,
            proxy=False,
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.DESTROY,
            deploy_options=apigateway.StageOptions(
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
            ),
        )
        api.root.add_resource("health").add_method("GET")
        api.root.add_resource("hello").add_method("GET")
        return api
