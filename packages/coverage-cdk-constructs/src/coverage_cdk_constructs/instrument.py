"""Instrument one Lambda function: layer, environment, handler, least-privilege write.

One implementation for :class:`InstrumentedFunction` and the
:class:`CoverageInstrumentation` aspect. It uses only public aws-cdk-lib API
(``add_layers``, ``add_environment``, the L1 ``CfnFunction.handler``).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.environment import (
    DEFAULT_RAW_PREFIX,
    ENV_ENABLED,
    ENV_FLUSH_POLICY,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_PREFIX,
    ENV_SAMPLE_RATE,
    FLUSH_POLICY,
    ZERO_CODE_HANDLER,
)

COVERAGE_MODES = ("zero-code", "decorator")


def is_python(function: lambda_.Function) -> bool:
    """Python functions by the runtime family's name prefix, never a fixed list."""
    return function.runtime.name.startswith("python3.")


def instrument_function(
    function: lambda_.Function,
    *,
    bucket: CoverageBucket | s3.IBucket,
    layer: lambda_.ILayerVersion,
    coverage_mode: str = "zero-code",
    sample_rate: float = 1.0,
) -> None:
    """Attach the layer, set the environment, redirect the handler, grant the write."""
    if coverage_mode not in COVERAGE_MODES:
        raise ValueError(
            f"coverage_mode={coverage_mode!r}: choose 'zero-code' (handler redirected) or "
            "'decorator' (your code uses @coverage_handler)"
        )
    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(f"sample_rate={sample_rate!r} must be between 0 and 1")
    target = bucket.bucket if isinstance(bucket, CoverageBucket) else bucket
    prefix = bucket.raw_prefix if isinstance(bucket, CoverageBucket) else DEFAULT_RAW_PREFIX
    function.add_layers(layer)
    for name, value in {
        ENV_ENABLED: "true",
        ENV_S3_BUCKET: target.bucket_name,
        ENV_S3_PREFIX: prefix,
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
    if role is not None:
        # A policy of its own: the function's default policy may not name the
        # function itself (the function depends on that policy: a cycle).
        pattern = f"{prefix}*/*/*/{function.function_name}/*"
        iam.Policy(
            function,
            "CoverageWrite",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[target.arn_for_objects(pattern)]
                )
            ],
        )
        if target.encryption_key is not None:
            target.encryption_key.grant(role, "kms:GenerateDataKey", "kms:Encrypt")
