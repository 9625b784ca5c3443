"""Security promises of the constructs, judged on synthesised templates by IAM's rules.

The bucket refuses plain HTTP and anyone without credentials; a function's
role may write only its own keys, only from that function's code, and read
nothing; the combiner's role reads
raw data and reports and writes only under the combined prefix. moto does not
enforce policies, so each promise is checked twice: on the template's
properties (``aws_cdk.assertions``) and by evaluating its policies
(:func:`tests.iam_patterns.decide`) for concrete requests. And the layer, as
published by ``python -m coverage_cdk_constructs.build_layer``, holds nothing
outside its layout and nothing that looks like a credential.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from coverage_cdk_constructs import (
    CoverageBucket,
    CoverageCombiner,
    InstrumentedFunction,
    build_layer,
)
from coverage_cdk_constructs.bundle import Bundle
from coverage_wrapper.keys import is_probe_key
from tests.constructs.conftest import code, imported_layer
from tests.constructs.templates import concrete, logical_id, role_id, statements_for_role
from tests.constructs.test_key_contract import wrapper_key, wrapper_probe_key
from tests.iam_patterns import ANONYMOUS, SOURCE_FUNCTION_ARN, Decision, Request, decide

BUCKET_ARN: Final = "arn:aws:s3:::coverage-data"
ACCOUNT_ROLE: Final = "arn:aws:iam::123456789012:role/{}"
FUNCTION_ARN: Final = "arn:aws:lambda:eu-west-1:123456789012:function:{}"
NAMES: Final = ("orders", "orders-v2")
#: AWSLambdaBasicExecutionRole, the one managed policy our roles get: logs only.
BASIC_EXECUTION: Final = [
    {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*",
    }
]
TLS: Final[dict[str, str]] = {"aws:SecureTransport": "true"}
PLAIN_HTTP: Final[dict[str, str]] = {"aws:SecureTransport": "false"}


@dataclass(frozen=True)
class Synthesised:
    """One stack's policies with concrete ARNs, and the functions' environments."""

    bucket_policy: list[dict[str, Any]]
    roles: dict[str, list[dict[str, Any]]]
    environments: dict[str, dict[str, Any]]
    template: assertions.Template

    def from_code_of(self, name: str, context: dict[str, str]) -> dict[str, str]:
        """``context`` as Lambda adds to a request made by ``name``'s code (its ARN)."""
        return {**context, SOURCE_FUNCTION_ARN: FUNCTION_ARN.format(name)}


def _managed_policies(template: assertions.Template, role: str) -> list[str]:
    properties = template.to_json()["Resources"][role]["Properties"]
    assert "Policies" not in properties, "inline role policies: judge them too"
    for managed in template.find_resources("AWS::IAM::ManagedPolicy").values():
        assert {"Ref": role} not in managed["Properties"].get("Roles", []), "judge it too"
    return [concrete(arn, {"AWS::Partition": "aws"}) for arn in properties["ManagedPolicyArns"]]


def _synthesise(stack: cdk.Stack, bucket: CoverageBucket, functions: dict[str, Any]) -> Synthesised:
    template = assertions.Template.from_stack(stack)
    resources = template.to_json()["Resources"]
    values = {f"{logical_id(bucket.bucket)}.Arn": BUCKET_ARN}
    # A function's Ref is its name (given here, so known before deployment).
    values |= {logical_id(f): name for name, f in functions.items() if name != "combiner"}
    values |= {f"{logical_id(f)}.Arn": FUNCTION_ARN.format(name) for name, f in functions.items()}
    (policy,) = template.find_resources("AWS::S3::BucketPolicy").values()
    roles = {}
    for name, function in functions.items():
        role = role_id(function)
        managed = _managed_policies(template, role)
        assert managed == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"], (
            managed
        )
        roles[name] = BASIC_EXECUTION + concrete(statements_for_role(template, role), values)
    environments = {
        name: resources[logical_id(f)]["Properties"]["Environment"]["Variables"]
        for name, f in functions.items()
    }
    return Synthesised(
        bucket_policy=concrete(policy["Properties"]["PolicyDocument"]["Statement"], values),
        roles=roles,
        environments=environments,
        template=template,
    )


@pytest.fixture(scope="module")
def stack(combiner_bundle: Bundle) -> Synthesised:
    """Two instrumented functions whose names start alike, and a combiner, on one bucket."""
    stack = cdk.Stack(cdk.App(), "Security")
    bucket = CoverageBucket(stack, "Coverage")
    layer = imported_layer(stack)
    functions: dict[str, Any] = {
        name: InstrumentedFunction(
            stack,
            name.replace("-", ""),
            bucket=bucket,
            layer=layer,
            function_name=name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=code(),
        )
        for name in NAMES
    }
    functions["combiner"] = CoverageCombiner(stack, "Combiner", bucket=bucket).function
    return _synthesise(stack, bucket, functions)


def as_role(
    stack: Synthesised,
    name: str,
    action: str,
    key: str | None = None,
    context: dict[str, str] = TLS,
) -> Decision:
    """IAM's decision on ``name``'s code calling ``action`` on the bucket or ``key`` (over TLS).

    The request carries ``name``'s ``lambda:SourceFunctionArn``, as Lambda adds it.
    """
    resource = BUCKET_ARN if key is None else f"{BUCKET_ARN}/{key}"
    context = stack.from_code_of(name, context)
    request = Request(action, resource, ACCOUNT_ROLE.format(name), context)
    return decide(request, identity=stack.roles[name], resource=stack.bucket_policy)


def test_the_bucket_blocks_public_access_and_denies_plain_http_in_its_template(
    stack: Synthesised,
) -> None:
    stack.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }
        },
    )
    bucket = next(iter(stack.template.find_resources("AWS::S3::Bucket").values()))
    assert "AccessControl" not in bucket["Properties"]
    assert stack.bucket_policy == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
        }
    ]


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:GetObject", "coverage/2026/11/25/orders/x.coverage"),
        ("s3:GetObject", "coverage-combined/latest/index.html"),
        ("s3:PutObject", "coverage/anything"),
        ("s3:ListBucket", None),
        ("s3:PutBucketPolicy", None),
    ],
)
def test_the_bucket_answers_no_one_without_credentials(
    stack: Synthesised, action: str, key: str | None
) -> None:
    resource = BUCKET_ARN if key is None else f"{BUCKET_ARN}/{key}"
    for context, expected in ((TLS, "implicit-deny"), (PLAIN_HTTP, "explicit-deny")):
        request = Request(action, resource, ANONYMOUS, context)
        assert decide(request, resource=stack.bucket_policy) == expected, context


def test_plain_http_is_denied_even_to_a_role_allowed_over_tls(stack: Synthesised) -> None:
    key = wrapper_key(stack.environments["orders"], "orders", pid=7, seq=1)
    assert as_role(stack, "orders", "s3:PutObject", key) == "allow"
    assert as_role(stack, "orders", "s3:PutObject", key, PLAIN_HTTP) == "explicit-deny"
    report = "coverage-combined/latest/index.html"
    assert as_role(stack, "combiner", "s3:GetObject", report) == "allow"
    assert as_role(stack, "combiner", "s3:GetObject", report, PLAIN_HTTP) == "explicit-deny"
    assert as_role(stack, "combiner", "s3:ListBucket", None, PLAIN_HTTP) == "explicit-deny"


def test_a_function_writes_only_its_own_keys_and_reads_nothing(stack: Synthesised) -> None:
    for name in NAMES:
        (other,) = set(NAMES) - {name}
        own = wrapper_key(stack.environments[name], name, pid=7, seq=1)
        others = wrapper_key(stack.environments[other], other, pid=7, seq=1)
        assert own.startswith(f"coverage/2026/11/25/{name}/"), own
        assert as_role(stack, name, "s3:PutObject", own) == "allow"
        assert as_role(stack, name, "s3:PutObject", others) == "implicit-deny"
        # Outside the layout: another prefix, the reports, a key of no date.
        for key in (
            f"other/{own}",
            f"coverage-combined/latest/{name}.html",
            f"coverage/{name}/x.coverage",
        ):
            assert as_role(stack, name, "s3:PutObject", key) == "implicit-deny", key
        for action in ("s3:GetObject", "s3:DeleteObject", "s3:PutObjectAcl"):
            for key in (own, others):
                assert as_role(stack, name, action, key) == "implicit-deny", (action, key)
        for action in ("s3:ListBucket", "s3:PutBucketPolicy", "s3:DeleteBucket"):
            assert as_role(stack, name, action) == "implicit-deny", action


def test_a_functions_role_used_outside_its_code_writes_nothing(stack: Synthesised) -> None:
    """The role's credentials without the function's ARN (e.g. assumed elsewhere), or another's."""
    for name in NAMES:
        (other,) = set(NAMES) - {name}
        own = wrapper_key(stack.environments[name], name, pid=7, seq=1)
        assert as_role(stack, name, "s3:PutObject", own) == "allow"
        for context in (TLS, stack.from_code_of(other, TLS)):
            request = Request(
                "s3:PutObject", f"{BUCKET_ARN}/{own}", ACCOUNT_ROLE.format(name), context
            )
            verdict = decide(request, identity=stack.roles[name], resource=stack.bucket_policy)
            assert verdict == "implicit-deny", context


def test_a_functions_health_probe_is_inside_its_grant_and_no_other(stack: Synthesised) -> None:
    """The probe wrote {prefix}_health/..., which no function's grant allows."""
    for name in NAMES:
        (other,) = set(NAMES) - {name}
        probe = wrapper_probe_key(stack.environments[name], name)
        assert is_probe_key(probe), probe
        assert as_role(stack, name, "s3:PutObject", probe) == "allow", probe
        assert as_role(stack, other, "s3:PutObject", probe) == "implicit-deny", probe
        assert as_role(stack, name, "s3:PutObject", "coverage/_health/c1-7.probe") == (
            "implicit-deny"
        )


def test_the_combiner_reads_raw_data_and_writes_only_its_output_prefix(stack: Synthesised) -> None:
    raw = wrapper_key(stack.environments["orders"], "orders", pid=7, seq=1)
    report = "coverage-combined/latest/coverage.xml"
    assert as_role(stack, "combiner", "s3:GetObject", raw) == "allow"
    assert as_role(stack, "combiner", "s3:GetObject", report) == "allow"
    assert as_role(stack, "combiner", "s3:ListBucket") == "allow"
    assert as_role(stack, "combiner", "s3:PutObject", report) == "allow"
    assert as_role(stack, "combiner", "s3:PutObject", "coverage-combined/rolling/x.html") == "allow"
    for key in (raw, "coverage/combined.coverage", "elsewhere/report.html"):
        assert as_role(stack, "combiner", "s3:PutObject", key) == "implicit-deny", key
    assert as_role(stack, "combiner", "s3:GetObject", "elsewhere/secret.txt") == "implicit-deny"
    for action in ("s3:DeleteObject", "s3:PutObjectAcl"):
        for key in (raw, report):
            assert as_role(stack, "combiner", action, key) == "implicit-deny", (action, key)
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucket"):
        assert as_role(stack, "combiner", action) == "implicit-deny", action


def test_the_evaluator_sees_a_public_bucket_when_one_is_asked_for() -> None:
    """The negative control: the checks above fail on a bucket made public on purpose."""
    stack = cdk.Stack(cdk.App(), "Unsafe")
    bucket = CoverageBucket(
        stack,
        "Coverage",
        bucket_props={
            "enforce_ssl": False,
            "public_read_access": True,
            "block_public_access": s3.BlockPublicAccess(
                block_public_acls=False,
                block_public_policy=False,
                ignore_public_acls=False,
                restrict_public_buckets=False,
            ),
        },
        allow_unsafe_bucket_props=True,
    )
    synthesised = _synthesise(stack, bucket, {})
    request = Request("s3:GetObject", f"{BUCKET_ARN}/coverage/x", ANONYMOUS, PLAIN_HTTP)
    assert decide(request, resource=synthesised.bucket_policy) == "allow"


def test_the_evaluator_refuses_what_it_cannot_judge() -> None:
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    request = Request("s3:GetObject", f"{BUCKET_ARN}/k", ANONYMOUS, TLS)
    with pytest.raises(ValueError, match="IpAddress"):
        decide(request, resource=[{**statement, "Condition": {"IpAddress": {"aws:SourceIp": "x"}}}])
    with pytest.raises(ValueError, match="NotPrincipal"):
        decide(request, resource=[{**statement, "NotPrincipal": {"AWS": "x"}}])
    assert decide(request, resource=[statement]) == "explicit-deny"


#: Where a layer's files may be: the wrapper and the combiner, coverage.py per Python, the
#: extension (``lambda-coverage-layer validate`` checks the same layout its own way).
LAYER_LAYOUT: Final = re.compile(
    r"python/coverage_(wrapper|combiner)/[\w./-]+"
    r"|python/lib/python3\.\d+/site-packages/"
    r"(coverage/[\w./-]+|coverage-[\w.]+\.dist-info/[\w./-]+|\w+\.pth)"
    r"|extensions/[\w.-]+"
)
#: Names no layer should carry: credential stores, keys, environment files, VCS folders.
FORBIDDEN_NAME: Final = re.compile(
    r"(^|/)(\.aws|\.env(\..*)?|credentials|\.netrc|\.pypirc|\.git|\.ssh|id_rsa\w*)(/|$)"
    r"|\.(pem|key|p12|pfx)$",
    re.IGNORECASE,
)
#: Bytes that look like a credential: an access key ID, a secret's assignment, a private key.
CREDENTIAL: Final = re.compile(
    rb"\b(AKIA|ASIA)[A-Z0-9]{16}\b"
    rb"|aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"
    rb"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def zip_findings(path: Path, layout: re.Pattern[str] | None) -> list[str]:
    """What is wrong with the zip at ``path``: entries outside ``layout`` or holding a secret."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if name.startswith("/") or ".." in name.split("/"):
                found.append(f"{name}: outside the layer's folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                found.append(f"{name}: a symbolic link")
            if layout is not None and not info.is_dir() and not layout.fullmatch(name):
                found.append(f"{name}: outside the layout")
            if FORBIDDEN_NAME.search(name):
                found.append(f"{name}: a credential or environment file")
            match = CREDENTIAL.search(archive.read(info))
            if match:
                found.append(f"{name}: looks like a credential ({match.group()[:8]!r}...)")
    return found


@pytest.fixture(scope="module")
def published(layer_bundles: dict[str, Bundle], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer zips as published (built once per session: ``layer_bundles`` fills the cache)."""
    output = tmp_path_factory.mktemp("published")
    assert build_layer.main(["--output", str(output)]) == build_layer.EXIT_OK
    return output


def test_the_published_layers_hold_their_layout_and_no_credential(published: Path) -> None:
    zips = sorted(published.glob("*.zip"))
    assert [z.name for z in zips] == [
        build_layer.layer_file_name(a) for a in sorted(("arm64", "x86_64"))
    ]
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        assert "extensions/lambda-coverage" in names
        assert "python/coverage_wrapper/__init__.py" in names
        assert zip_findings(path, LAYER_LAYOUT) == [], path.name


def test_the_combiners_code_holds_no_credential(combiner_bundle: Bundle) -> None:
    assert zip_findings(combiner_bundle.path, layout=None) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The negative control: each kind of finding, planted in an otherwise good layer."""
    planted = tmp_path / "planted.zip"
    key_id = "AKIA" + "IOSFODNN7EXAMPLE"
    with zipfile.ZipFile(planted, "w") as archive:
        archive.writestr("python/coverage_wrapper/__init__.py", "")
        archive.writestr("python/coverage_wrapper/settings.py", f"KEY = {key_id!r}\n")
        archive.writestr("python/.aws/credentials", "")
        archive.writestr("python/coverage_wrapper/.env", "")
        archive.writestr("python/coverage_wrapper/server.pem", "")
        archive.writestr("../escape.py", "")
        archive.writestr("boto3/__init__.py", "")
        link = zipfile.ZipInfo("python/coverage_wrapper/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    found = zip_findings(planted, LAYER_LAYOUT)
    assert found == [
        "python/coverage_wrapper/settings.py: looks like a credential (b'AKIAIOSF'...)",
        "python/.aws/credentials: outside the layout",
        "python/.aws/credentials: a credential or environment file",
        "python/coverage_wrapper/.env: a credential or environment file",
        "python/coverage_wrapper/server.pem: a credential or environment file",
        "../escape.py: outside the layer's folder",
        "../escape.py: outside the layout",
        "boto3/__init__.py: outside the layout",
        "python/coverage_wrapper/link: a symbolic link",
    ]
