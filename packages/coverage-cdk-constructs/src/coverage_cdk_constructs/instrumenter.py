"""Instrument one Lambda function: layer, environment, handler, least-privilege write.

One implementation for :class:`InstrumentedFunction` and the
:class:`CoverageInstrumentation` aspect. It uses only public aws-cdk-lib API:
``add_layers``, ``add_environment``, ``architecture``, the L1
``CfnFunction.handler``, and the function's CloudFormation properties as
``TreeInspector`` reports them (what is already set is never overwritten).

A function that cannot be instrumented (a Python this release does not
measure, a layer lacking its Python, no room for another layer) is left
untouched with one warning on it that says why and how to keep it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import jsii
from aws_cdk import Annotations, Stack, TreeInspector
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct, IValidation

from coverage_cdk_constructs.bucket import (
    KEY_WRITE_ACTIONS,
    SOURCE_FUNCTION_ARN_KEY,
    CoverageBucket,
    grant_key_write,
    write_coverage_statement,
)
from coverage_cdk_constructs.environment import (
    DEFAULT_RAW_PREFIX,
    ENV_ENABLED,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
    KEY_TEMPLATE,
    ZERO_CODE_HANDLER,
    function_keys_pattern,
)
from coverage_cdk_constructs.lambda_platform import SUPPORTED_PYTHONS
from coverage_cdk_constructs.layers import CoverageLayers, describe_layer_choice, layer_for_function
from coverage_cdk_constructs.nag import WRITE_REASON, acknowledge_wildcards
from coverage_wrapper.instrumentation import coverage_environment, zero_code_environment

COVERAGE_MODES: Final = ("zero-code", "decorator")
#: The id of the write policy each instrumented function gets.
WRITE_POLICY_ID: Final = "CoverageWrite"
#: The id of the (resource-less) construct that marks a function as instrumented.
MARKER_ID: Final = "LambdaCoverage"
#: Metadata that keeps a construct and everything under it out of the aspect.
EXCLUDE_METADATA: Final = "lambda-coverage:exclude"
#: Lambda's limit on layers per function.
MAX_LAYERS: Final = 5

# The ids of the warnings (acknowledge one with
# ``Annotations.of(scope).acknowledge_warning(id, reason)``).
WARN_CONTAINER_IMAGE: Final = "lambda-coverage:container-image"
WARN_NOT_PYTHON: Final = "lambda-coverage:not-python"
WARN_UNSUPPORTED_PYTHON: Final = "lambda-coverage:unsupported-python"
WARN_TOO_MANY_LAYERS: Final = "lambda-coverage:too-many-layers"
WARN_CDK_SINGLETON: Final = "lambda-coverage:cdk-singleton"
WARN_KEPT_VARIABLES: Final = "lambda-coverage:kept-variables"
WARN_NOT_GRANTED: Final = "lambda-coverage:not-granted"
WARN_IMMUTABLE_ROLE: Final = "lambda-coverage:immutable-role"
WARN_SHARED_ROLE: Final = "lambda-coverage:shared-role"
WARN_CONFLICTING_ASPECTS: Final = "lambda-coverage:conflicting-aspects"


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


@dataclass(frozen=True)
class Settings:
    """What to instrument a function with: the options of the aspect or the function."""

    bucket: CoverageBucket | s3.IBucket
    layer: lambda_.ILayerVersion | CoverageLayers | None = None
    coverage_mode: str = "zero-code"
    sample_rate: float = 1.0

    def __post_init__(self) -> None:
        check_options(self.coverage_mode, self.sample_rate)

    @property
    def target(self) -> s3.IBucket:
        """The S3 bucket the data files go to."""
        return self.bucket.bucket if isinstance(self.bucket, CoverageBucket) else self.bucket

    @property
    def raw_prefix(self) -> str:
        """Where the data files go in the bucket."""
        return (
            self.bucket.raw_prefix
            if isinstance(self.bucket, CoverageBucket)
            else DEFAULT_RAW_PREFIX
        )

    def describe(self) -> str:
        """The settings in words; two aspects with different descriptions conflict."""
        return (
            f"bucket={self.bucket.node.path}, layer={describe_layer_choice(self.layer)}, "
            f"coverage_mode={self.coverage_mode!r}, sample_rate={self.sample_rate:g}"
        )


class InstrumentationMarker(Construct):
    """Marks a function as instrumented (no resources); ``settings`` says with what."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings


def instrumented_with(function: lambda_.Function) -> Settings | None:
    """The settings ``function`` was instrumented with, or ``None`` if it was not."""
    marker = function.node.try_find_child(MARKER_ID)
    return marker.settings if isinstance(marker, InstrumentationMarker) else None


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


def skip(function: IConstruct, warning_id: str, why: str, opt_out: str) -> None:
    """Leave ``function`` untouched with one acknowledgeable warning saying why and what to do."""
    Annotations.of(function).add_warning_v2(
        warning_id, f"Lambda Coverage left {function.node.path} uninstrumented: {why}. {opt_out}"
    )


@jsii.implements(IValidation)
class SynthError:
    """A problem that must fail the synthesis, reported on the construct it is about."""

    def __init__(self, message: str) -> None:
        self.message = message

    def validate(self) -> list[str]:
        """The message, always: the construct cannot be synthesised as it is."""
        return [self.message]


def instrument_function(function: lambda_.Function, settings: Settings, *, opt_out: str) -> bool:
    """Attach the layer, set the environment, redirect the handler, grant the write.

    ``True`` when instrumented; ``False`` when the function was left untouched
    with a warning (``opt_out`` ends it: how to keep the function out). A
    layer of the wrong architecture raises :class:`LayerArchitectureError`;
    a layer that cannot be built raises :class:`LayerBuildError`.
    """
    runtime = function.runtime.name
    python = runtime.removeprefix("python")
    if python not in SUPPORTED_PYTHONS:
        skip(
            function,
            WARN_UNSUPPORTED_PYTHON,
            f"its runtime {runtime} is not one this release measures "
            f"(python{', python'.join(SUPPORTED_PYTHONS)})",
            f"Move it to one of those, or {opt_out}",
        )
        return False
    stack = Stack.of(function)
    attached = stack.resolve(cfn_function(function).layers) or []
    if len(attached) >= MAX_LAYERS:
        skip(
            function,
            WARN_TOO_MANY_LAYERS,
            f"it already has {len(attached)} layers, the most Lambda allows",
            f"Free a place (merge or drop a layer) to measure it, or {opt_out}",
        )
        return False
    layer = layer_for_function(function, settings.layer)
    runtimes = layer.compatible_runtimes
    if runtimes is not None and not any(r.runtime_equals(function.runtime) for r in runtimes):
        skip(
            function,
            WARN_UNSUPPORTED_PYTHON,
            f"the coverage layer {layer.node.path} carries "
            f"{', '.join(r.name for r in runtimes)}, not {runtime}",
            f"Add {runtime} to that layer's compatible_runtimes, or {opt_out}",
        )
        return False
    if stack.resolve(layer.layer_version_arn) not in attached:
        function.add_layers(layer)
    InstrumentationMarker(function, MARKER_ID, settings=settings)
    environment = cloudformation_properties(function).get("environment")
    existing = (stack.resolve(environment) or {}).get("variables") or {}
    kept = _set_environment(function, settings, existing)
    if kept:
        _report_kept(function, kept)
    writes_elsewhere = sorted(set(kept) & {ENV_S3_BUCKET, ENV_S3_KEY_TEMPLATE})
    prefix = kept.get(ENV_S3_PREFIX, settings.raw_prefix)
    if writes_elsewhere or not isinstance(prefix, str):
        skip_what = ", ".join(writes_elsewhere) or ENV_S3_PREFIX
        Annotations.of(function).add_warning_v2(
            WARN_NOT_GRANTED,
            f"Lambda Coverage added no write permission to {function.node.path}: its own "
            f"{skip_what} decides where it writes. Grant its role s3:PutObject on those keys",
        )
        return True
    _grant_write(function, settings.target, prefix)
    return True


def cfn_function(function: lambda_.Function) -> lambda_.CfnFunction:
    """The function's L1 resource (every ``lambda_.Function`` has one as its default child)."""
    cfn = function.node.default_child
    if not isinstance(cfn, lambda_.CfnFunction):
        raise TypeError(f"{function.node.path} has no CfnFunction as its default child")
    return cfn


def cloudformation_properties(function: lambda_.Function) -> dict[str, Any]:
    """The function's CloudFormation properties as set so far (unresolved), by their L1 names."""
    inspector = TreeInspector()
    cfn_function(function).inspect(inspector)
    properties: dict[str, Any] = inspector.attributes.get("aws:cdk:cloudformation:props") or {}
    return properties


def _set_environment(
    function: lambda_.Function, settings: Settings, existing: dict[str, Any]
) -> dict[str, Any]:
    """Add the variables the function does not set itself; the ones it sets, by name."""
    stack = Stack.of(function)
    wanted = coverage_environment(
        bucket=settings.target.bucket_name,
        prefix=settings.raw_prefix,
        key_template=KEY_TEMPLATE,
        sample_rate=settings.sample_rate,
    )
    kept: dict[str, Any] = {}
    for name, value in wanted.items():
        if name not in existing:
            function.add_environment(name, value)
        elif existing[name] != stack.resolve(value):
            kept[name] = existing[name]
    if settings.coverage_mode == "zero-code":
        cfn = cfn_function(function)
        if ENV_ORIGINAL_HANDLER in existing:
            # Their own wrapper set-up (or ours by hand): redirecting again
            # would make the wrapper call itself.
            if cfn.handler != ZERO_CODE_HANDLER:
                kept[ENV_ORIGINAL_HANDLER] = existing[ENV_ORIGINAL_HANDLER]
        elif cfn.handler is not None and cfn.handler != ZERO_CODE_HANDLER:
            for name, value in zero_code_environment(cfn.handler).items():
                function.add_environment(name, value)
            cfn.handler = ZERO_CODE_HANDLER
    return kept


def _report_kept(function: lambda_.Function, kept: dict[str, Any]) -> None:
    shown = ", ".join(
        f"{name}={value!r}" if isinstance(value, str) else f"{name} (a reference)"
        for name, value in sorted(kept.items())
    )
    notes = []
    if str(kept.get(ENV_ENABLED, "true")).lower() != "true":
        notes.append(
            f"with {ENV_ENABLED}={kept[ENV_ENABLED]!r} it has the layer but measures nothing "
            "until that is 'true'"
        )
    if ENV_ORIGINAL_HANDLER in kept:
        notes.append("its handler was not redirected")
    Annotations.of(function).add_warning_v2(
        WARN_KEPT_VARIABLES,
        f"Lambda Coverage kept {function.node.path}'s own {shown} (already set on the "
        "function; remove them to use the instrumentation's values)"
        + "".join(f"; {note}" for note in notes),
    )


def _grant_write(function: lambda_.Function, bucket: s3.IBucket, prefix: str) -> None:
    role = function.role
    if role is None:
        raise ValueError(
            f"{function.node.path} has no role the coverage write permission could be added to"
        )
    # A policy of its own: the function's default policy may not name the
    # function itself (the function depends on that policy: a cycle). Always
    # bound to the function's own code (lambda:SourceFunctionArn): a role may
    # be shared with functions this app cannot see, and the condition costs
    # one line of policy.
    policy = iam.Policy(
        function,
        WRITE_POLICY_ID,
        statements=[
            write_coverage_statement(bucket, prefix, function.function_name, function.function_arn)
        ],
    )
    # Attached from the role's side: a role imported with mutable=False
    # ignores it (iam.Policy(roles=[...]) would attach it regardless).
    role.attach_inline_policy(policy)
    cfn = policy.node.default_child
    assert isinstance(cfn, iam.CfnPolicy), policy.node.path
    if not Stack.of(policy).resolve(cfn.roles):
        function.node.try_remove_child(WRITE_POLICY_ID)
        key = bucket.encryption_key
        Annotations.of(function).add_warning_v2(
            WARN_IMMUTABLE_ROLE,
            f"Lambda Coverage did not change the role {role.node.path} of "
            f"{function.node.path}: it is imported with mutable=False or from another account. "
            "Give that role "
            f"s3:PutObject on the objects '{function_keys_pattern(prefix, '<function name>')}' "
            f"of {bucket.node.path} on the condition that {SOURCE_FUNCTION_ARN_KEY} equals "
            "the function's ARN"
            + (f", and {', '.join(KEY_WRITE_ACTIONS)} on {key.node.path}" if key else "")
            + " (CoverageBucket.grant_write_coverage(role, function_name=..., "
            "source_function_arn=...) where the role is yours to change); until then its data "
            "cannot be uploaded",
        )
        function.node.add_validation(_SharedRoleCheck(function, role))
        return
    acknowledge_wildcards(policy, policy.document, WRITE_REASON)
    grant_key_write(bucket, role)


def same_role(one: iam.IRole, other: iam.IRole) -> bool:
    """Whether two roles are one: the same construct, or imported twice by the same ARN."""
    if one.node.path == other.node.path:
        return True
    # Only a concrete ARN says two imports are one role (a token may differ by stack).
    arn, other_arn = (Stack.of(role).resolve(role.role_arn) for role in (one, other))
    return isinstance(arn, str) and arn == other_arn


def instrumented_sharers(function: lambda_.Function, role: iam.IRole) -> list[lambda_.Function]:
    """The app's instrumented functions whose role is ``role`` (``function`` among them)."""
    return [
        construct
        for construct in function.node.root.node.find_all()
        if isinstance(construct, lambda_.Function)
        and construct.role is not None
        and instrumented_with(construct) is not None
        and same_role(construct.role, role)
    ]


@jsii.implements(IValidation)
class _SharedRoleCheck:
    """Warns, once the app is complete, when a role no grant could be bound to is shared.

    Run at validation, not when the function is instrumented: the functions
    that share the role may be made (or instrumented by the aspect) later.
    """

    def __init__(self, function: lambda_.Function, role: iam.IRole) -> None:
        self.function, self.role = function, role

    def validate(self) -> list[str]:
        sharers = instrumented_sharers(self.function, self.role)
        if len(sharers) > 1:
            names = ", ".join(sorted(f.node.path for f in sharers))
            Annotations.of(self.function).add_warning_v2(
                WARN_SHARED_ROLE,
                f"Lambda Coverage: the role {self.role.node.path} of {self.function.node.path} "
                f"is shared by the instrumented functions {names}, and no grant bound to one "
                f"function ({SOURCE_FUNCTION_ARN_KEY}) could be added to it: a grant on it "
                "without that condition lets each of them write the others' coverage keys. "
                "Give each function's grant that condition with its own ARN, or each function "
                "a role of its own",
            )
        return []
