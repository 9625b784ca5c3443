"""``CoverageBucket``: where data files land and combined reports are kept."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_cdk_constructs.environment import (
    DEFAULT_COMBINED_PREFIX,
    DEFAULT_RAW_PREFIX,
    function_keys_pattern,
)
from coverage_wrapper.keys import normalize_prefix

DEFAULT_RAW_RETENTION = Duration.days(30)
DEFAULT_COMBINED_RETENTION = Duration.days(365)


class CoverageBucket(Construct):
    """An S3 bucket for coverage data, safe by default, or one you bring.

    :param bucket: an existing bucket to use (then nothing is created).
    :param bucket_props: extra props for the created bucket; not with ``bucket``.
    :param raw_prefix: where the wrappers write data files. Default ``coverage/``.
    :param combined_prefix: where combined reports go; must not be inside
        ``raw_prefix``, so that the raw data's expiry never removes reports.
        Default ``coverage-combined/``.
    :param raw_retention: raw data expires after this. Default 30 days.
    :param combined_retention: reports expire after this; ``None`` keeps them.
        Default 365 days.
    :param encryption_key: a KMS key; default S3-managed encryption.
    :param removal_policy: default ``RETAIN``.
    :param auto_delete_objects: empty the bucket when the stack is destroyed
        (needs ``removal_policy=DESTROY``; for test stacks). Default ``False``.

    The created bucket blocks all public access and refuses plain HTTP.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket | None = None,
        bucket_props: dict[str, Any] | None = None,
        raw_prefix: str = DEFAULT_RAW_PREFIX,
        combined_prefix: str = DEFAULT_COMBINED_PREFIX,
        raw_retention: Duration = DEFAULT_RAW_RETENTION,
        combined_retention: Duration | None = DEFAULT_COMBINED_RETENTION,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        auto_delete_objects: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if bucket is not None and bucket_props is not None:
            raise ValueError(
                "CoverageBucket takes bucket= (use an existing bucket) or bucket_props= "
                "(props for a new one), not both"
            )
        raw = _folder(raw_prefix, "raw_prefix")
        combined = _folder(combined_prefix, "combined_prefix")
        if combined.startswith(raw) or raw.startswith(combined):
            raise ValueError(
                f"combined_prefix={combined_prefix!r} overlaps raw_prefix={raw_prefix!r}: "
                "reports would expire with the raw data; choose separate prefixes"
            )
        if auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
            raise ValueError("auto_delete_objects=True needs removal_policy=RemovalPolicy.DESTROY")
        self.raw_prefix = raw
        self.combined_prefix = combined
        if bucket is not None:
            self.bucket: s3.IBucket = bucket
            return
        rules = [
            s3.LifecycleRule(
                id="ExpireRawCoverageData",
                prefix=raw,
                expiration=raw_retention,
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ]
        if combined_retention is not None:
            rules.append(
                s3.LifecycleRule(
                    id="ExpireCombinedReports", prefix=combined, expiration=combined_retention
                )
            )
        props: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "encryption": s3.BucketEncryption.KMS
            if encryption_key
            else s3.BucketEncryption.S3_MANAGED,
            "encryption_key": encryption_key,
            "lifecycle_rules": rules,
            "removal_policy": removal_policy,
            "auto_delete_objects": auto_delete_objects,
            **(bucket_props or {}),
        }
        self.bucket = s3.Bucket(self, "Bucket", **props)

    def grant_write_coverage(
        self, grantee: iam.IGrantable, function_name: str | None = None
    ) -> iam.Grant:
        """Let ``grantee`` put data files: under the raw prefix, or only its function's keys.

        With ``function_name``, only keys of the wrapper's layout for that
        function (``{raw}yyyy/mm/dd/{function_name}/...``). Nothing to read.
        Granting a function its own name through its own role's default
        policy makes a dependency cycle; :class:`InstrumentedFunction` uses a
        policy of its own for that.
        """
        pattern = (
            function_keys_pattern(self.raw_prefix, function_name)
            if function_name
            else f"{self.raw_prefix}*"
        )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(pattern)],
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Encrypt")
        return grant

    def grant_read_coverage(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` list the bucket and read raw data and reports (a combiner, a CI role).

        Listing is granted on the whole bucket: without it S3 answers a read
        of a missing key with 403 instead of 404, and the combiner needs to
        tell the two apart.
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn]
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["s3:GetObject"],
                resource_arns=[
                    self.bucket.arn_for_objects(f"{self.raw_prefix}*"),
                    self.bucket.arn_for_objects(f"{self.combined_prefix}*"),
                ],
            )
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant_decrypt(grantee)
        return grant

    def grant_write_reports(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` put objects under the combined prefix only (the combiner).

        It cannot write raw data, so what it writes can never trigger a
        combiner listening on the raw prefix.
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{self.combined_prefix}*")],
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Encrypt")
        return grant


def _folder(prefix: str, name: str) -> str:
    try:
        folder = normalize_prefix(prefix)
    except ValueError:
        folder = ""
    # Empty is a valid prefix for the wrapper, but here it would overlap the other one.
    if not folder:
        raise ValueError(f"{name}={prefix!r} must be a folder-like key prefix such as 'coverage/'")
    return folder
