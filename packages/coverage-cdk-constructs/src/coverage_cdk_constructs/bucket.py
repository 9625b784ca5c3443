"""``CoverageBucket``: where data files land and combined reports are kept."""

from __future__ import annotations

from enum import Enum
from typing import Any, Final

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
from coverage_cdk_constructs.errors import BucketSafetyError
from coverage_wrapper.keys import normalize_prefix

DEFAULT_RAW_RETENTION = Duration.days(30)
DEFAULT_COMBINED_RETENTION = Duration.days(365)


class CoverageBucket(Construct):
    """An S3 bucket for coverage data, safe by default, or one you bring.

    :param bucket: an existing bucket to use (then nothing is created).
    :param bucket_props: extra ``s3.Bucket`` props for the created bucket; not with
        ``bucket``. Its ``lifecycle_rules`` are added to the expiry rules. It
        may not set what this construct has its own prop for
        (``removal_policy``, ``auto_delete_objects``, ``encryption_key``), nor
        weaken TLS-only access, the public access block or encryption
        (:class:`BucketSafetyError` says which prop and what to do).
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
    :param allow_unsafe_bucket_props: the explicit opt-out: let ``bucket_props``
        turn off ``enforce_ssl``, the public access block or encryption.
        Default ``False``.

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
        allow_unsafe_bucket_props: bool = False,
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
        extra = dict(bucket_props or {})
        check_bucket_props(
            extra, encryption_key=encryption_key, allow_unsafe=allow_unsafe_bucket_props
        )
        # The caller's rules are added to the expiry rules, never instead of them.
        rules += extra.pop("lifecycle_rules", None) or []
        props: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "encryption": s3.BucketEncryption.KMS
            if encryption_key
            else s3.BucketEncryption.S3_MANAGED,
            "encryption_key": encryption_key,
            "removal_policy": removal_policy,
            "auto_delete_objects": auto_delete_objects,
            **extra,
            "lifecycle_rules": rules,
        }
        self.bucket = s3.Bucket(self, "Bucket", **props)

    def grant_write_coverage(
        self,
        grantee: iam.IGrantable,
        function_name: str | None = None,
        *,
        source_function_arn: str | None = None,
    ) -> iam.Grant:
        """Let ``grantee`` put data files: under the raw prefix, or only its function's keys.

        With ``function_name``, only keys of the wrapper's layout for that
        function (``{raw}yyyy/mm/dd/{function_name}/...``). Nothing to read.
        With ``source_function_arn`` (the function's unqualified ARN), only
        requests made by that function's code may use the grant (the
        ``lambda:SourceFunctionArn`` condition): on a role several functions
        share, each stays in its own keys. With a KMS key, the returned grant
        includes encrypting with it. Naming a function (its name or ARN)
        through its own role's default policy makes a dependency cycle;
        :class:`InstrumentedFunction` uses a policy of its own for that.
        """
        statement = write_coverage_statement(
            self.bucket, self.raw_prefix, function_name, source_function_arn
        )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=statement.actions,
            resource_arns=statement.resources,
            conditions=statement.conditions or None,
        )
        return _with_key(grant, grant_key_write(self.bucket, grantee))

    def grant_read_coverage(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` list the bucket and read raw data and reports (a combiner, a CI role).

        Listing is granted on the whole bucket: without it S3 answers a read
        of a missing key with 403 instead of 404, and the combiner needs to
        tell the two apart. With a KMS key, the grant includes decrypting.
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
        key = self.bucket.encryption_key
        return _with_key(grant, key.grant_decrypt(grantee) if key is not None else None)

    def grant_write_reports(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` put objects under the combined prefix only (the combiner).

        It cannot write raw data, so what it writes can never trigger a
        combiner listening on the raw prefix. With a KMS key, the grant
        includes encrypting.
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{self.combined_prefix}*")],
        )
        return _with_key(grant, grant_key_write(self.bucket, grantee))


#: The condition key Lambda sets on every request made with a function's
#: execution-role credentials from its execution environment: the function's
#: unqualified ARN (the Lambda guide's "Using source function ARN to control
#: function access behavior"; identity-based policies and SCPs only).
SOURCE_FUNCTION_ARN_KEY: Final = "lambda:SourceFunctionArn"


def write_coverage_statement(
    bucket: s3.IBucket,
    raw_prefix: str,
    function_name: str | None = None,
    source_function_arn: str | None = None,
) -> iam.PolicyStatement:
    """``s3:PutObject`` under ``raw_prefix``, or only in ``function_name``'s folder of it.

    With ``source_function_arn``, only for requests whose
    ``lambda:SourceFunctionArn`` is that ARN (``ArnEquals``): requests of
    another function on the same role, or of anyone using the role outside
    Lambda, do not match.
    """
    pattern = (
        function_keys_pattern(raw_prefix, function_name) if function_name else f"{raw_prefix}*"
    )
    return iam.PolicyStatement(
        actions=["s3:PutObject"],
        resources=[bucket.arn_for_objects(pattern)],
        conditions=(
            {"ArnEquals": {SOURCE_FUNCTION_ARN_KEY: source_function_arn}}
            if source_function_arn is not None
            else None
        ),
    )


#: What writing an object to a KMS-encrypted bucket needs of its key.
KEY_WRITE_ACTIONS: Final = ("kms:GenerateDataKey", "kms:Encrypt")


def grant_key_write(bucket: s3.IBucket, grantee: iam.IGrantable) -> iam.Grant | None:
    """Let ``grantee`` encrypt with ``bucket``'s KMS key; ``None`` when it has none."""
    key = bucket.encryption_key
    return key.grant(grantee, *KEY_WRITE_ACTIONS) if key is not None else None


def _with_key(grant: iam.Grant, key_grant: iam.Grant | None) -> iam.Grant:
    return grant if key_grant is None else grant.combine(key_grant)


#: ``bucket_props`` keys this construct has a prop of its own for.
_OWN_PROPS: Final = ("removal_policy", "auto_delete_objects", "encryption_key")
_PUBLIC_ACLS: Final = frozenset({"PUBLIC_READ", "PUBLIC_READ_WRITE", "AUTHENTICATED_READ"})
_STRONG_ENCRYPTION: Final = frozenset({"KMS", "DSSE"})


def check_bucket_props(
    props: dict[str, Any], *, encryption_key: kms.IKey | None, allow_unsafe: bool
) -> None:
    """Refuse ``bucket_props`` that contradict the construct's props or weaken its defaults.

    Weakening (plain HTTP, public access, no encryption) is allowed only
    with ``allow_unsafe``; contradicting a prop of the construct never is.
    """
    for name in _OWN_PROPS:
        if name in props:
            raise BucketSafetyError(
                f"bucket_props[{name!r}] would override CoverageBucket's own {name}=: "
                f"pass {name}={_shown(props[name])} to CoverageBucket instead"
            )
    encryption = props.get("encryption")
    if (
        encryption_key is not None
        and encryption is not None
        and encryption.name not in _STRONG_ENCRYPTION
    ):
        raise BucketSafetyError(
            f"bucket_props['encryption']={encryption} contradicts encryption_key=: "
            "drop it (the key means BucketEncryption.KMS)"
        )
    weakened = []
    if props.get("enforce_ssl", True) is not True:
        weakened.append("enforce_ssl=False would accept plain HTTP")
    access = props.get("block_public_access")
    if access is not None and not all(
        getattr(access, flag) is True
        for flag in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    ):
        weakened.append("block_public_access weaker than BLOCK_ALL would allow public access")
    if props.get("public_read_access") is True:
        weakened.append("public_read_access=True would make every object public")
    acl = props.get("access_control")
    if acl is not None and acl.name in _PUBLIC_ACLS:
        weakened.append(f"access_control={acl} would make the bucket readable by others")
    if encryption is not None and encryption.name == "UNENCRYPTED":
        weakened.append("encryption=UNENCRYPTED would turn encryption off")
    if weakened and not allow_unsafe:
        raise BucketSafetyError(
            "bucket_props would weaken CoverageBucket's safety defaults: "
            + "; ".join(weakened)
            + ". Drop those props, or pass allow_unsafe_bucket_props=True if you mean it"
        )


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, Enum) else repr(value)


def _folder(prefix: str, name: str) -> str:
    try:
        folder = normalize_prefix(prefix)
    except ValueError:
        folder = ""
    # Empty is a valid prefix for the wrapper, but here it would overlap the other one.
    if not folder:
        raise ValueError(f"{name}={prefix!r} must be a folder-like key prefix such as 'coverage/'")
    return folder
