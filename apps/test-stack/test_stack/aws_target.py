"""The load test against a deployed test stack, found by its CloudFormation outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from test_stack.invocations import InvokeResult, error_type_of
from test_stack.load_driver import Invoker
from test_stack.scenarios import Scenario

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient

#: The test stack's CloudFormation outputs: function name per catalogue function.
FUNCTION_OUTPUTS: Final = {
    "main": "MainFunctionName",
    "simple": "SimpleFunctionName",
    "error": "ErrorFunctionName",
    "example-simple": "ExampleSimpleFunctionName",
}
BUCKET_OUTPUT: Final = "CoverageBucketName"


def stack_outputs(cloudformation: CloudFormationClient, stack: str) -> dict[str, str]:
    """The outputs of a CloudFormation stack, by output key."""
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    if not stacks:
        raise LookupError(f"no stack named {stack!r}")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def deployed_functions(outputs: Mapping[str, str]) -> dict[str, str]:
    """Deployed function name per catalogue function, from the stack's outputs."""
    return {name: outputs[key] for name, key in FUNCTION_OUTPUTS.items() if key in outputs}


def aws_invoker(client: LambdaClient, names: Mapping[str, str]) -> Invoker:
    """Invoke deployed functions with boto3 (``RequestResponse``)."""

    def invoke(scenario: Scenario) -> InvokeResult:
        started = time.perf_counter()
        response = client.invoke(
            FunctionName=names[scenario.function],
            InvocationType="RequestResponse",
            Payload=json.dumps(scenario.event).encode(),
        )
        payload = response["Payload"].read()
        error_type = None
        if response.get("FunctionError"):
            error_type = error_type_of(payload)
        return InvokeResult(
            function=scenario.function,
            request_id=response["ResponseMetadata"].get("RequestId", ""),
            container_id="",
            payload=payload,
            error_type=error_type,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    return invoke
