"""CoverageBucket: every prop and default, and its grants, on synthesised templates."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from coverage_cdk_constructs import BucketSafetyError, CoverageBucket
from tests.constructs.templates import logical_id, statements_for_role

Match = assertions.Match


@pytest.fixture(scope="module")
def defaults() -> tuple[CoverageBucket, assertions.Template]:
    stack = cdk.Stack(cdk.App(), "Defaults")
    bucket = CoverageBucket(stack, "Coverage")
    return bucket, assertions.Template.from_stack(stack)


def test_defaults_private_s3_managed_tls_only_retained(
    defaults: tuple[CoverageBucket, assertions.Template],
) -> None:
    bucket, template = defaults
    assert (bucket.raw_prefix, bucket.combined_prefix) == ("coverage/", "coverage-combined/")
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.has_resource(
        "AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "ExpireRawCoverageData",
                        "Prefix": "coverage/",
                        "ExpirationInDays": 30,
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    },
                    {
                        "Id": "ExpireCombinedReports",
                        "Prefix": "coverage-combined/",
                        "ExpirationInDays": 365,
                        "Status": "Enabled",
                    },
                ]
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)


def test_every_prop_shapes_the_bucket() -> None:
    stack = cdk.Stack(cdk.App(), "Props")
    key = kms.Key(stack, "Key")
    bucket = CoverageBucket(
        stack,
        "Coverage",
        raw_prefix="raw",
        combined_prefix="/reports/",
        raw_retention=cdk.Duration.days(7),
        combined_retention=None,
        encryption_key=key,
        removal_policy=cdk.RemovalPolicy.DESTROY,
        auto_delete_objects=True,
        bucket_props={"versioned": True},
    )
    assert (bucket.raw_prefix, bucket.combined_prefix) == ("raw/", "reports/")
    template = assertions.Template.from_stack(stack)
    template.has_resource(
        "AWS::S3::Bucket", {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    )
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [logical_id(key), "Arn"]},
                        }
                    }
                ]
            },
            # No rule for reports: combined_retention=None keeps them.
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "ExpireRawCoverageData",
                        "Prefix": "raw/",
                        "ExpirationInDays": 7,
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        },
    )
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)


def test_an_existing_bucket_is_used_as_it_is() -> None:
    stack = cdk.Stack(cdk.App(), "Existing")
    existing = s3.Bucket.from_bucket_name(stack, "Existing", "team-coverage")
    bucket = CoverageBucket(stack, "Coverage", bucket=existing, raw_prefix="lambda/")
    assert bucket.bucket is existing
    assert bucket.raw_prefix == "lambda/"
    assertions.Template.from_stack(stack).resource_count_is("AWS::S3::Bucket", 0)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"bucket_props": {"versioned": True}, "use_existing": True},
            r"takes bucket= \(use an existing bucket\) or bucket_props= \(props for a new one\), "
            r"not both",
        ),
        (
            {"raw_prefix": "coverage/", "combined_prefix": "coverage/combined/"},
            r"combined_prefix='coverage/combined/' overlaps raw_prefix='coverage/': reports would "
            r"expire with the raw data",
        ),
        (
            {"raw_prefix": "data/", "combined_prefix": "data"},
            r"combined_prefix='data' overlaps raw_prefix='data/'",
        ),
        ({"raw_prefix": "../up/"}, r"raw_prefix='../up/' must be a folder-like key prefix"),
        ({"combined_prefix": " "}, r"combined_prefix=' ' must be a folder-like key prefix"),
        (
            {"auto_delete_objects": True},
            r"auto_delete_objects=True needs removal_policy=RemovalPolicy.DESTROY",
        ),
    ],
)
def test_bad_props_are_refused_with_the_fix(props: dict[str, object], message: str) -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    if props.pop("use_existing", False):
        props["bucket"] = s3.Bucket.from_bucket_name(stack, "Existing", "some-bucket")
    with pytest.raises(ValueError, match=message):
        CoverageBucket(stack, "Coverage", **props)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def grants() -> tuple[dict[str, iam.Grant], dict[str, str], assertions.Template]:
    """A bucket with a KMS key and one role per grant."""
    stack = cdk.Stack(cdk.App(), "Grants")
    key = kms.Key(stack, "Key")
    bucket = CoverageBucket(stack, "Coverage", encryption_key=key)
    principal = iam.ServicePrincipal("lambda.amazonaws.com")
    roles = {
        name: iam.Role(stack, name, assumed_by=principal)
        for name in ("AnyFunction", "Orders", "Reader", "Reporter")
    }
    made = {
        "AnyFunction": bucket.grant_write_coverage(roles["AnyFunction"]),
        "Orders": bucket.grant_write_coverage(roles["Orders"], function_name="orders"),
        "Reader": bucket.grant_read_coverage(roles["Reader"]),
        "Reporter": bucket.grant_write_reports(roles["Reporter"]),
    }
    ids = {name: logical_id(role) for name, role in roles.items()}
    ids["Bucket"], ids["Key"] = logical_id(bucket.bucket), logical_id(key)
    return made, ids, assertions.Template.from_stack(stack)


def test_grants_are_exactly_what_each_role_needs(
    grants: tuple[dict[str, iam.Grant], dict[str, str], assertions.Template],
) -> None:
    made, ids, template = grants
    assert all(grant.success for grant in made.values())
    arn, key = f"<{ids['Bucket']}.Arn>", f"<{ids['Key']}.Arn>"
    kms_write = {
        "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
        "Effect": "Allow",
        "Resource": [key],
    }
    assert statements_for_role(template, ids["AnyFunction"]) == [
        kms_write,
        {"Action": ["s3:PutObject"], "Effect": "Allow", "Resource": [f"{arn}/coverage/*"]},
    ]
    assert statements_for_role(template, ids["Orders"]) == [
        kms_write,
        {
            "Action": ["s3:PutObject"],
            "Effect": "Allow",
            "Resource": [f"{arn}/coverage/????/??/??/orders/*"],
        },
    ]
    assert statements_for_role(template, ids["Reader"]) == [
        {"Action": ["kms:Decrypt"], "Effect": "Allow", "Resource": [key]},
        {
            "Action": ["s3:GetObject"],
            "Effect": "Allow",
            "Resource": [f"{arn}/coverage-combined/*", f"{arn}/coverage/*"],
        },
        {"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": [arn]},
    ]
    assert statements_for_role(template, ids["Reporter"]) == [
        kms_write,
        {"Action": ["s3:PutObject"], "Effect": "Allow", "Resource": [f"{arn}/coverage-combined/*"]},
    ]


def test_each_grant_carries_its_kms_grant(
    grants: tuple[dict[str, iam.Grant], dict[str, str], assertions.Template],
) -> None:
    """The returned ``iam.Grant`` includes the key's statement, e.g. for ``apply_before``."""
    made, _, _ = grants
    actions = {
        name: sorted(a for s in grant.principal_statements for a in s.actions)
        for name, grant in made.items()
    }
    assert actions == {
        "AnyFunction": ["kms:Encrypt", "kms:GenerateDataKey", "s3:PutObject"],
        "Orders": ["kms:Encrypt", "kms:GenerateDataKey", "s3:PutObject"],
        "Reader": ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"],
        "Reporter": ["kms:Encrypt", "kms:GenerateDataKey", "s3:PutObject"],
    }


@pytest.mark.parametrize(
    ("bucket_props", "message"),
    [
        (
            {"enforce_ssl": False},
            r"bucket_props would weaken CoverageBucket's safety defaults: enforce_ssl=False would "
            r"accept plain HTTP\. Drop those props, or pass allow_unsafe_bucket_props=True",
        ),
        (
            {"block_public_access": s3.BlockPublicAccess.BLOCK_ACLS},
            r"block_public_access weaker than BLOCK_ALL would allow public access",
        ),
        ({"public_read_access": True}, r"public_read_access=True would make every object public"),
        (
            {"access_control": s3.BucketAccessControl.PUBLIC_READ},
            r"access_control=BucketAccessControl.PUBLIC_READ would make the bucket readable",
        ),
        (
            {"encryption": s3.BucketEncryption.UNENCRYPTED},
            r"encryption=UNENCRYPTED would turn encryption off",
        ),
        (
            {"removal_policy": cdk.RemovalPolicy.DESTROY},
            r"bucket_props\['removal_policy'\] would override CoverageBucket's own "
            r"removal_policy=: pass removal_policy=RemovalPolicy.DESTROY to "
            r"CoverageBucket instead",
        ),
        (
            {"auto_delete_objects": True},
            r"bucket_props\['auto_delete_objects'\] would override CoverageBucket's own",
        ),
    ],
)
def test_bucket_props_cannot_weaken_or_contradict_the_defaults(
    bucket_props: dict[str, object], message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Weak")
    with pytest.raises(BucketSafetyError, match=message):
        CoverageBucket(stack, "Coverage", bucket_props=bucket_props)


def test_bucket_props_rules_are_added_to_the_expiry_rules() -> None:
    """``lifecycle_rules=[]`` (or any list) cannot remove the expiry of raw data."""
    stack = cdk.Stack(cdk.App(), "Rules")
    CoverageBucket(
        stack,
        "Coverage",
        bucket_props={
            "lifecycle_rules": [
                s3.LifecycleRule(
                    id="Archive",
                    prefix="coverage-combined/archive/",
                    expiration=cdk.Duration.days(9),
                )
            ]
        },
    )
    CoverageBucket(stack, "Empty", bucket_props={"lifecycle_rules": []})
    rules = [
        resource["Properties"]["LifecycleConfiguration"]["Rules"]
        for resource in assertions.Template.from_stack(stack)
        .find_resources("AWS::S3::Bucket")
        .values()
    ]
    assert [[rule["Id"] for rule in bucket] for bucket in rules] == [
        ["ExpireRawCoverageData", "ExpireCombinedReports", "Archive"],
        ["ExpireRawCoverageData", "ExpireCombinedReports"],
    ]


def test_the_explicit_opt_out_lets_bucket_props_weaken_the_bucket() -> None:
    stack = cdk.Stack(cdk.App(), "OptOut")
    CoverageBucket(
        stack,
        "Coverage",
        bucket_props={"enforce_ssl": False},
        allow_unsafe_bucket_props=True,
    )
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::S3::BucketPolicy", 0)


def test_a_key_and_another_encryption_contradict() -> None:
    stack = cdk.Stack(cdk.App(), "Contradict")
    with pytest.raises(
        BucketSafetyError,
        match=r"bucket_props\['encryption'\]=BucketEncryption.S3_MANAGED contradicts "
        r"encryption_key=: drop it",
    ):
        CoverageBucket(
            stack,
            "Coverage",
            encryption_key=kms.Key(stack, "Key"),
            bucket_props={"encryption": s3.BucketEncryption.S3_MANAGED},
        )
