"""Instrument one Lambda function: layer, environment, handler, least-privilege write.

One implementation for :class:`InstrumentedFunction` and the
:class:`CoverageInstrumentation` aspect. It uses only public aws-cdk-lib API
(``add_layers``, ``add_environment``, ``architecture``, the L1
``CfnFunction.handler``).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.environment import (
    DEFAULT_RAW_PREFIX,
    ENV_ENABLED,
    ENV_FLUSH_POLICY,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
    ENV_SAMPLE_RATE,
    FLUSH_POLICY,
    KEY_TEMPLATE,
    ZERO_CODE_HANDLER,
    function_keys_pattern,
)
from coverage_cdk_constructs.layer import CoverageLayer

COVERAGE_MODES: Final = ("zero-code", "decorator")
#: The id of the write policy each instrumented function gets; its presence marks one as done.
WRITE_POLICY_ID: Final = "CoverageWrite"
#: Metadata that keeps a construct and everything under it out of the aspect.
EXCLUDE_METADATA: Final = "lambda-coverage:exclude"


def is_python(function: lambda_.Function) -> bool:
    """Python functions by the runtime family's name prefix, never a fixed list."""
    return function.runtime.name.startswith("python3.")


def check_options(coverage_mode: str, sample_rate: float) -> None:
    """A clear error for a mode or sample rate the wrapper would not understand."""
    if coverage_mode not in COVERAGE_MODES:
        raise ValueError(
            f"coverage_mode={coverage_mode!r}: choose 'zero-code' (handler redirected) or "
            "'decorator' (your code uses @coverage_handler)"
        )
    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(
            f"sample_rate={sample_rate!r} must be between 0 and 1 (1 measures every invocation)"
        )


def is_instrumented(function: lambda_.Function) -> bool:
    """Whether :func:`instrument_function` has already been applied to ``function``."""
    return function.node.try_find_child(WRITE_POLICY_ID) is not None


def exclude_from_coverage(scope: IConstruct) -> None:
    """Keep ``scope`` and every function under it out of :class:`CoverageInstrumentation`."""
    scope.node.add_metadata(EXCLUDE_METADATA, True)


def is_excluded(construct: IConstruct) -> bool:
    """Whether ``construct`` or one of its scopes was passed to :func:`exclude_from_coverage`."""
    return any(
        entry.type == EXCLUDE_METADATA
        for scope in construct.node.scopes
        for entry in scope.node.metadata
    )


def instrument_function(
    function: lambda_.Function,
    *,
    bucket: CoverageBucket | s3.IBucket,
    layer: lambda_.ILayerVersion | None = None,
    coverage_mode: str = "zero-code",
    sample_rate: float = 1.0,
) -> None:
    """Attach the layer, set the environment, redirect the handler, grant the write.

    Without ``layer`` the stack's own :class:`CoverageLayer` for the
    function's architecture is used (built on first use).
    """
    check_options(coverage_mode, sample_rate)
    if layer is None:
        layer = CoverageLayer.for_stack(function, architecture=function.architecture)
    elif isinstance(layer, CoverageLayer) and layer.architecture.name != function.architecture.name:
        raise ValueError(
            f"{function.node.path} runs on {function.architecture.name} but the layer "
            f"{layer.node.path} is built for {layer.architecture.name}: use a CoverageLayer "
            f"with architecture=lambda_.Architecture.{_constant(function.architecture)}"
        )
    target = bucket.bucket if isinstance(bucket, CoverageBucket) else bucket
    prefix = bucket.raw_prefix if isinstance(bucket, CoverageBucket) else DEFAULT_RAW_PREFIX
    function.add_layers(layer)
    for name, value in {
        ENV_ENABLED: "true",
        ENV_S3_BUCKET: target.bucket_name,
        ENV_S3_PREFIX: prefix,
        ENV_S3_KEY_TEMPLATE: KEY_TEMPLATE,
        ENV_FLUSH_POLICY: FLUSH_POLICY,
        ENV_SAMPLE_RATE: f"{sample_rate:g}",
    }.items():
        function.add_environment(name, value)
    if coverage_mode == "zero-code":
        cfn = function.node.default_child
        if not isinstance(cfn, lambda_.CfnFunction) or cfn.handler is None:
            raise ValueError(f"{function.node.path} has no handler to redirect")
        function.add_environment(ENV_ORIGINAL_HANDLER, cfn.handler)
        cfn.handler = ZERO_CODE_HANDLER
    role = function.role
    if role is None:
        raise ValueError(
            f"{function.node.path} has no role the coverage write permission could be added to"
        )
    # A policy of its own: the function's default policy may not name the
    # function itself (the function depends on that policy: a cycle).
    iam.Policy(
        function,
        WRITE_POLICY_ID,
        roles=[role],
        statements=[
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    target.arn_for_objects(function_keys_pattern(prefix, function.function_name))
                ],
            )
        ],
    )
    if target.encryption_key is not None:
        target.encryption_key.grant(role, "kms:GenerateDataKey", "kms:Encrypt")


def _constant(architecture: lambda_.Architecture) -> str:
    return "ARM_64" if architecture.name == "arm64" else "X86_64"
