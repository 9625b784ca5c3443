"""``CoverageCombiner``: the combiner as a Lambda function, on a schedule and/or on uploads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from aws_cdk import Annotations, AssetHashType, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from coverage_cdk_constructs.bucket import CoverageBucket
from coverage_cdk_constructs.bundle import Bundle, build_bundle
from coverage_cdk_constructs.bundled_packages import combiner_spec
from coverage_cdk_constructs.environment import (
    COMBINER_HANDLER,
    DATA_SUFFIX,
    ENV_COMBINED_PREFIX,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
    KEY_TEMPLATE,
)
from coverage_cdk_constructs.errors import CombinerPlacementError
from coverage_cdk_constructs.instrumenter import exclude_from_coverage
from coverage_cdk_constructs.lambda_platform import python_of_runtime
from coverage_cdk_constructs.layer import python_runtime
from coverage_cdk_constructs.nag import (
    BASIC_EXECUTION_ROLE,
    COMBINER_LOGS_REASON,
    COMBINER_REASON,
    NOTIFICATIONS_HANDLER_LOGS_REASON,
    NOTIFICATIONS_HANDLER_REASON,
    acknowledge,
    acknowledge_wildcards,
)
from coverage_wrapper.limits import MAX_INPUT_BYTES, combiner_memory_mb, process_peak_mib

#: The newest Python the combiner is tested on.
DEFAULT_COMBINER_PYTHON: Final = "3.13"
DEFAULT_SCHEDULE: Final = events.Schedule.rate(Duration.hours(1))
#: One merging process with an input of the combiner's size cap, at the stated
#: bound (``coverage_wrapper.limits``): 1,024 MB for the 64 MiB cap.
DEFAULT_COMBINER_MEMORY_MB: Final = combiner_memory_mb()
#: The smallest memory (MB) that holds one merging process with the worst valid input.
_ONE_PROCESS_MB: Final = -(-process_peak_mib() * 1024 * 1024 // 1_000_000)
#: Only the wrapper's data files trigger a merge (not reports, not anything else).
DATA_FILE_SUFFIX: Final = DATA_SUFFIX
COMBINER_RUNTIME_REASON: Final = (
    f"Lambda Coverage combiner: Python {DEFAULT_COMBINER_PYTHON} is the newest Python the "
    "combiner is tested on"
)


class CoverageCombiner(Construct):
    """Merge the raw data files of a :class:`CoverageBucket` into reports, in Lambda.

    A scheduled run combines everything under the raw prefix into
    ``{combined_prefix}latest/``; S3 triggers merge each new data file into
    ``{combined_prefix}rolling/``. The function reads the raw and combined
    prefixes and writes only the combined prefix, which never overlaps the
    raw one (:class:`CoverageBucket` refuses that) and is not in the trigger's
    filter: it cannot trigger itself.

    :param bucket: a :class:`CoverageBucket`, or any ``s3.IBucket`` (then the
        default prefixes, ``coverage/`` and ``coverage-combined/``).
    :param schedule: when to combine everything. Default: every hour.
        ``None``: no schedule (then ``s3_trigger`` must be on).
    :param s3_trigger: also merge every new data file as it lands. Default
        ``False``. In the bucket's stack through S3 notifications; in another
        stack through EventBridge (the bucket's EventBridge notifications are
        switched on, and a rule here matches its data files), so the stacks
        do not depend on each other both ways. An imported bucket of another
        stack cannot be switched: :class:`CombinerPlacementError` says where to put
        the combiner.
    :param runtime: default Python 3.13.
    :param architecture: default ``ARM_64``.
    :param memory_size: MB; default :data:`DEFAULT_COMBINER_MEMORY_MB` (1,024), computed
        from the input cap and the memory bound (``coverage_wrapper.limits``): one
        merging process holds an input of the 64 MiB cap (30 MiB + 11 x 64 MiB, the
        combiner README's "Memory and time per input") and the fetched inputs waiting for it
        (64 MiB more). The function starts as many merging processes as its memory
        holds. Less than one process needs is a synth warning.
    :param timeout: default 5 minutes.
    :param reserved_concurrent_executions: default: unreserved.
    :param combiner_source: the ``coverage_combiner`` folder to bundle. Default:
        this repository's when there is one, else the released wheel.
    :param combiner_version: bundle this release of ``lambda-coverage-combiner``.
    :param coverage_versions: coverage.py release per Python version.
    :param cache_dir: where wheels and built zips are cached.

    Its cdk-nag findings by design (the grants' wildcards, the logging
    policy, the runtime, and aws-cdk-lib's notifications handler) are
    acknowledged with reasons.

    Attributes: ``function`` (the ``lambda_.Function``), ``bucket`` (the
    :class:`CoverageBucket`), ``rule`` (the schedule's ``events.Rule`` or
    ``None``), ``upload_rule`` (the EventBridge rule of a cross-stack trigger
    or ``None``), ``bundle``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: CoverageBucket | s3.IBucket,
        schedule: events.Schedule | None = DEFAULT_SCHEDULE,
        s3_trigger: bool = False,
        runtime: lambda_.Runtime | None = None,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        memory_size: int = DEFAULT_COMBINER_MEMORY_MB,
        timeout: Duration | None = None,
        reserved_concurrent_executions: int | None = None,
        combiner_source: Path | None = None,
        combiner_version: str | None = None,
        coverage_versions: Mapping[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not isinstance(bucket, CoverageBucket):
            # The default prefixes, and the same grants as for a CoverageBucket.
            bucket = CoverageBucket(self, "Bucket", bucket=bucket)
        self.bucket = bucket
        if schedule is None and not s3_trigger:
            raise ValueError(
                f"{self.node.path}: schedule=None and s3_trigger=False would never run the "
                "combiner; keep the schedule or turn the trigger on"
            )
        runtime = runtime or python_runtime(DEFAULT_COMBINER_PYTHON)
        self.bundle: Bundle = build_bundle(
            combiner_spec(
                architecture.name,
                python_of_runtime(runtime.name),
                coverage_versions=coverage_versions,
                combiner_source=combiner_source,
                combiner_version=combiner_version,
            ),
            cache_dir=cache_dir,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=runtime,
            architecture=architecture,
            handler=COMBINER_HANDLER,
            code=lambda_.Code.from_asset(
                str(self.bundle.path),
                asset_hash=self.bundle.fingerprint,
                asset_hash_type=AssetHashType.CUSTOM,
            ),
            memory_size=memory_size,
            timeout=timeout or Duration.minutes(5),
            reserved_concurrent_executions=reserved_concurrent_executions,
            description="Lambda Coverage: combine raw coverage data into reports",
            environment={
                ENV_S3_BUCKET: bucket.bucket.bucket_name,
                ENV_S3_PREFIX: bucket.raw_prefix,
                ENV_COMBINED_PREFIX: bucket.combined_prefix,
                # The layout the instrumented functions write: the combiner reads keys with it.
                ENV_S3_KEY_TEMPLATE: KEY_TEMPLATE,
            },
        )
        if memory_size < _ONE_PROCESS_MB:
            Annotations.of(self).add_warning_v2(
                "lambda-coverage:combiner-memory",
                f"memory_size={memory_size} MB holds less than one data file of the combiner's "
                f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB size cap needs ({_ONE_PROCESS_MB} MB): "
                f"a large input can end the function out of memory. Give at least "
                f"{_ONE_PROCESS_MB} MB, or leave the default",
            )
        # Measuring the combiner would only add its own data to what it combines.
        exclude_from_coverage(self)
        bucket.grant_read_coverage(self.function)
        bucket.grant_write_reports(self.function)
        self.rule: events.Rule | None = None
        if schedule is not None:
            self.rule = events.Rule(
                self,
                "Schedule",
                schedule=schedule,
                description="Lambda Coverage: combine raw coverage data",
                targets=[targets.LambdaFunction(self.function)],
            )
        self.upload_rule: events.Rule | None = None
        if s3_trigger:
            self._trigger_on_uploads(bucket)
        acknowledge_combiner(self)

    def _trigger_on_uploads(self, bucket: CoverageBucket) -> None:
        target = bucket.bucket
        if Stack.of(target).node.path == Stack.of(self).node.path:
            target.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.function),
                s3.NotificationKeyFilter(prefix=bucket.raw_prefix, suffix=DATA_FILE_SUFFIX),
            )
            _acknowledge_notifications_handler(Stack.of(self))
            return
        # S3 notifications to a function in another stack make each stack
        # depend on the other (the bucket's configuration names the function,
        # the function's permission names the bucket). EventBridge keeps the
        # dependency one-way: the rule here names the bucket there.
        if isinstance(target, s3.Bucket):
            target.enable_event_bridge_notification()
        else:
            raise CombinerPlacementError(
                f"{self.node.path}: s3_trigger=True with the bucket {target.node.path} of "
                f"another stack ({Stack.of(target).node.path}) that is imported, so its "
                "notifications cannot be set from here: put the combiner in the bucket's "
                "stack, or use the schedule alone (s3_trigger=False)"
            )
        _acknowledge_notifications_handler(Stack.of(target))
        self.upload_rule = events.Rule(
            self,
            "Uploads",
            description="Lambda Coverage: merge each new data file",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [target.bucket_name]},
                    "object": {
                        "key": events.Match.wildcard(f"{bucket.raw_prefix}*{DATA_FILE_SUFFIX}")
                    },
                },
            ),
            targets=[targets.LambdaFunction(self.function)],
        )


def acknowledge_combiner(combiner: CoverageCombiner) -> list[str]:
    """Acknowledge the combiner's by-design cdk-nag findings (its grants, logs, runtime)."""
    role = combiner.function.role
    if role is None:
        return []
    done: list[str] = []
    policy = role.node.try_find_child("DefaultPolicy")
    if isinstance(policy, iam.Policy):
        done += acknowledge_wildcards(policy, policy.document, COMBINER_REASON)
    done += acknowledge(role, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", COMBINER_LOGS_REASON)
    if combiner.function.runtime.name == f"python{DEFAULT_COMBINER_PYTHON}":
        done += acknowledge(combiner.function, "AwsSolutions-L1", COMBINER_RUNTIME_REASON)
    return done


#: The construct ID of aws-cdk-lib's bucket-notifications handler in a stack.
NOTIFICATIONS_HANDLER_ID: Final = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def _acknowledge_notifications_handler(stack: Stack) -> None:
    handler = stack.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
    if handler is None:
        return
    acknowledge(
        handler, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", NOTIFICATIONS_HANDLER_LOGS_REASON
    )
    acknowledge(handler, "AwsSolutions-IAM5[Resource::*]", NOTIFICATIONS_HANDLER_REASON)
