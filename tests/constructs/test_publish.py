"""Publishing the layer to several regions, against moto's Lambda and SSM (in process)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from coverage_cdk_constructs import publish
from coverage_cdk_constructs.arn_lookup import SsmClient, parameter_name
from coverage_cdk_constructs.canary import CanaryResult
from coverage_cdk_constructs.manifest import published_versions, publisher_account, read_manifest
from coverage_cdk_constructs.publish import (
    PublishRequest,
    Sharing,
    lambda_clients,
    publish_layer,
    retry_config,
)
from coverage_cdk_constructs.regions import COMMERCIAL_REGIONS, parse_regions
from test_stack.s3_server import free_port

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1")
LAYER = "lambda-coverage-x86_64"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def zip_a(tmp_path: Path) -> Path:
    path = tmp_path / "a.zip"
    path.write_bytes(_zip(b"first"))
    return path


def _zip(content: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/marker.txt", content)
    return buffer.getvalue()


def _request(zip_path: Path, **changes: object) -> PublishRequest:
    base = PublishRequest(
        zip_path=zip_path,
        layer_name=LAYER,
        architecture="x86_64",
        runtimes=("python3.12", "python3.13"),
        regions=REGIONS,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _versions(region: str) -> list[int]:
    client = boto3.client("lambda", region_name=region)
    return sorted(
        v["Version"] for v in client.list_layer_versions(LayerName=LAYER)["LayerVersions"]
    )


def _clients(refusing: frozenset[str] = frozenset()) -> Callable[[str], LambdaClient]:
    """Real clients; those of ``refusing`` point at a closed port (connection refused)."""
    normal = lambda_clients()
    closed = f"http://127.0.0.1:{free_port()}"

    def client(region: str) -> LambdaClient:
        if region in refusing:
            return boto3.client(
                "lambda", region_name=region, endpoint_url=closed, config=retry_config(2)
            )
        return normal(region)

    return client


def test_first_publish_then_rerun_changes_nothing(aws: None, zip_a: Path) -> None:
    first = publish_layer(_request(zip_a), lambda_client=_clients())
    assert first.ok
    assert first.target_version == 1
    assert {r.status for r in first.results.values()} == {"published"}
    assert {r: _versions(r) for r in REGIONS} == {r: [1] for r in REGIONS}
    again = publish_layer(_request(zip_a), lambda_client=_clients())
    assert {r.status for r in again.results.values()} == {"unchanged"}
    assert {r: _versions(r) for r in REGIONS} == {r: [1] for r in REGIONS}
    description = boto3.client("lambda", region_name="eu-west-1").get_layer_version(
        LayerName=LAYER, VersionNumber=1
    )["Description"]
    assert description == f"Lambda Coverage 0.1.0 (x86_64) sha256:{first.sha256}"


def test_a_changed_zip_gets_a_new_version_everywhere(
    aws: None, zip_a: Path, tmp_path: Path
) -> None:
    publish_layer(_request(zip_a), lambda_client=_clients())
    zip_b = tmp_path / "b.zip"
    zip_b.write_bytes(_zip(b"second"))
    report = publish_layer(_request(zip_b), lambda_client=_clients())
    assert {
        r.region: (r.status, r.version, r.created) for r in report.results.values()
    } == dict.fromkeys(REGIONS, ("published", 2, (2,)))


def _policy_principals(region: str, version: int) -> set[tuple[str, str]]:
    """(statement id, principal) of the version's policy.

    moto drops a layer permission's ``OrganizationId`` (AWS turns it into an
    ``aws:PrincipalOrgID`` condition), so the organisation is checked
    through the statement ID, which names it.
    """
    client = boto3.client("lambda", region_name=region)
    answer = client.get_layer_version_policy(LayerName=LAYER, VersionNumber=version)
    statements = json.loads(answer["Policy"])["Statement"]
    return {(s["Sid"], publish._principal(s)) for s in statements}


def test_sharing_is_applied_and_read_back_from_the_policy(aws: None, zip_a: Path) -> None:
    publish_layer(_request(zip_a, sharing=Sharing(public=True)), lambda_client=_clients())
    assert {r: _policy_principals(r, 1) for r in REGIONS} == {
        r: {("lambda-coverage-public", "*")} for r in REGIONS
    }
    # Changing the sharing changes the policy, not the version.
    report = publish_layer(
        _request(zip_a, sharing=Sharing(org_id="o-abc123def4")), lambda_client=_clients()
    )
    assert {r.status for r in report.results.values()} == {"shared"}
    assert {r: _versions(r) for r in REGIONS} == {r: [1] for r in REGIONS}
    assert _policy_principals("sa-east-1", 1) == {("lambda-coverage-org-o-abc123def4", "*")}
    accounts = Sharing(accounts=("111122223333", "444455556666"))
    publish_layer(_request(zip_a, sharing=accounts), lambda_client=_clients())
    assert _policy_principals("us-east-1", 1) == {
        ("lambda-coverage-account-111122223333", "111122223333"),
        ("lambda-coverage-account-444455556666", "444455556666"),
    }
    again = publish_layer(_request(zip_a, sharing=accounts), lambda_client=_clients())
    assert {r.status for r in again.results.values()} == {"unchanged"}


#: Neither is an account id: every account, an organisation, ARNs, wrong lengths, other digits.
NOT_ACCOUNTS = [
    "*",
    "o-abc123def4",
    "11112222333",
    "1111222233334",
    "arn:aws:iam::111122223333:root",
    "111122223333 ",
    "\uff11" * 12,
    "",
]


def _publish_argv(zip_path: Path) -> list[str]:
    return ["publish", "--zip", str(zip_path), "--architecture", "x86_64", "--regions", "us-east-1"]


def _no_layer_anywhere() -> bool:
    client = boto3.client("lambda", region_name="us-east-1")
    return client.list_layers()["Layers"] == []


@pytest.mark.parametrize("value", NOT_ACCOUNTS)
def test_account_takes_only_account_ids_and_exits_2_naming_the_value(
    aws: None, zip_a: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_cdk_constructs import cli

    argv = [*_publish_argv(zip_a), "--account", "111122223333", value]
    assert cli.main(argv) == publish.EXIT_USAGE
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(f"lambda-coverage-layer publish: error: argument --account: {value!r} ")
    assert "12-digit account ids" in error
    assert "--public" in error
    assert _no_layer_anywhere()


#: Not an organisation id: every account, capitals, too short, an account id, a space.
NOT_ORGANISATIONS = ["*", "o-ABC123DEF4", "o-abc", "123456789012", "o-abc123def4 "]


@pytest.mark.parametrize("value", NOT_ORGANISATIONS)
def test_org_id_takes_only_organisation_ids(
    aws: None, zip_a: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_cdk_constructs import cli

    assert cli.main([*_publish_argv(zip_a), "--org-id", value]) == publish.EXIT_USAGE
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument --org-id: {value!r} is not an AWS Organizations id" in error
    assert _no_layer_anywhere()


def test_the_library_refuses_what_the_command_line_refuses() -> None:
    for value in NOT_ACCOUNTS:
        with pytest.raises(ValueError, match=re.escape(repr(value))):
            Sharing(accounts=("111122223333", value))
    for value in NOT_ORGANISATIONS:
        with pytest.raises(ValueError, match=re.escape(f"{value!r} is not an AWS Organizations")):
            Sharing(org_id=value)
    with pytest.raises(ValueError, match="'\\*' is not an AWS account id"):
        dataclasses.replace(Sharing(accounts=("111122223333",)), accounts=("*",))


def test_every_account_only_through_public(
    aws: None, zip_a: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_cdk_constructs import cli

    assert cli.main([*_publish_argv(zip_a), "--account", "111122223333"]) == publish.EXIT_OK
    assert _policy_principals("us-east-1", 1) == {
        ("lambda-coverage-account-111122223333", "111122223333")
    }
    assert cli.main([*_publish_argv(zip_a), "--org-id", "o-abc123def4"]) == publish.EXIT_OK
    assert _policy_principals("us-east-1", 1) == {("lambda-coverage-org-o-abc123def4", "*")}
    assert "organisation o-abc123def4" in capsys.readouterr().out
    assert cli.main([*_publish_argv(zip_a), "--public"]) == publish.EXIT_OK
    assert _policy_principals("us-east-1", 1) == {("lambda-coverage-public", "*")}


def test_a_failing_region_is_reported_and_a_rerun_finishes_it(aws: None, zip_a: Path) -> None:
    broken = publish_layer(_request(zip_a), lambda_client=_clients(frozenset({"eu-west-1"})))
    assert not broken.ok
    failed = broken.results["eu-west-1"]
    assert failed.status == "failed"
    assert "Could not connect" in (failed.error or "")
    assert {r: _versions(r) for r in REGIONS if r != "eu-west-1"} == {
        r: [1] for r in REGIONS if r != "eu-west-1"
    }
    assert _versions("eu-west-1") == []
    rerun = publish_layer(_request(zip_a), lambda_client=_clients())
    assert rerun.ok
    assert {r.region: r.status for r in rerun.results.values()} == {
        "us-east-1": "unchanged",
        "eu-west-1": "published",
        "ap-southeast-2": "unchanged",
        "sa-east-1": "unchanged",
    }
    assert {r: _versions(r) for r in REGIONS} == {r: [1] for r in REGIONS}


def test_a_dry_run_changes_nothing(aws: None, zip_a: Path, tmp_path: Path) -> None:
    publish_layer(_request(zip_a, regions=REGIONS[:2]), lambda_client=_clients())
    plan = publish_layer(
        _request(zip_a, dry_run=True, sharing=Sharing(public=True)), lambda_client=_clients()
    )
    assert {r.region: (r.status, r.version) for r in plan.results.values()} == {
        "us-east-1": ("would-share", 1),
        "eu-west-1": ("would-share", 1),
        "ap-southeast-2": ("would-publish", 1),
        "sa-east-1": ("would-publish", 1),
    }
    assert _versions("us-east-1") == [1]
    assert _versions("sa-east-1") == []
    with pytest.raises(Exception, match=r"ResourceNotFound|No policy"):
        boto3.client("lambda", region_name="us-east-1").get_layer_version_policy(
            LayerName=LAYER, VersionNumber=1
        )


def test_a_region_behind_is_backfilled_to_the_same_version(
    aws: None, zip_a: Path, tmp_path: Path
) -> None:
    publish_layer(_request(zip_a, regions=REGIONS[:1]), lambda_client=_clients())
    zip_b = tmp_path / "b.zip"
    zip_b.write_bytes(_zip(b"second"))
    publish_layer(_request(zip_b, regions=REGIONS[:1]), lambda_client=_clients())
    # us-east-1 is at 2; the others have nothing yet: all end at 2 with the new zip.
    report = publish_layer(_request(zip_b), lambda_client=_clients())
    assert report.target_version == 2
    assert {r.region: (r.version, r.created) for r in report.results.values()} == {
        "us-east-1": (2, ()),
        "eu-west-1": (2, (1, 2)),
        "ap-southeast-2": (2, (1, 2)),
        "sa-east-1": (2, (1, 2)),
    }
    again = publish_layer(_request(zip_b), lambda_client=_clients())
    assert {r.status for r in again.results.values()} == {"unchanged"}


class _Verdicts:
    """A canary whose verdict per region the test sets (the real one: test_publish_canary)."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.checked: list[str] = []

    def check(self, region: str, layer_arn: str, architecture: str) -> CanaryResult:
        self.checked.append(region)
        problems = ("the executed lines differ",) if region in self.failing else ()
        return CanaryResult(region, layer_arn, "3.12", problems)


def _ssm(region: str) -> SsmClient:
    client: SsmClient = boto3.client("ssm", region_name=region)
    return client


def _parameter(region: str, name: str) -> str | None:
    from coverage_cdk_constructs.arn_lookup import read_parameter

    return read_parameter(_ssm(region), name)


def test_ssm_parameters_are_written_only_where_the_canary_passed(aws: None, zip_a: Path) -> None:
    canary = _Verdicts(failing={"ap-southeast-2"})
    report = publish_layer(
        _request(zip_a), lambda_client=_clients(), canary=canary, ssm_client=_ssm
    )
    assert not report.ok
    assert {r.region: r.canary for r in report.results.values()} == {
        "us-east-1": "passed",
        "eu-west-1": "passed",
        "ap-southeast-2": "failed: the executed lines differ",
        "sa-east-1": "passed",
    }
    latest = parameter_name("/lambda-coverage/layer", "x86_64", "3.13")
    release = parameter_name("/lambda-coverage/layer", "x86_64", "3.12", "0.1.0")
    assert {r: (_parameter(r, latest), _parameter(r, release)) for r in REGIONS} == {
        r: (None, None) if r == "ap-southeast-2" else (report.results[r].arn,) * 2 for r in REGIONS
    }
    # The re-run checks again only the region whose canary failed.
    canary.failing.clear()
    canary.checked.clear()
    rerun = publish_layer(_request(zip_a), lambda_client=_clients(), canary=canary, ssm_client=_ssm)
    assert rerun.ok
    assert canary.checked == ["ap-southeast-2"]
    assert _parameter("ap-southeast-2", latest) == rerun.results["ap-southeast-2"].arn


def test_the_command_line_writes_the_manifest_and_arn_reads_it(
    aws: None, zip_a: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coverage_cdk_constructs import arn_lookup, cli

    manifest = tmp_path / "layers.json"
    argv = [
        "publish",
        "--zip",
        str(zip_a),
        "--architecture",
        "x86_64",
        "--regions",
        ",".join(REGIONS),
    ]
    assert cli.main([*argv, "--public", "--manifest", str(manifest)]) == publish.EXIT_OK
    layers = read_manifest(manifest)
    assert published_versions(layers) == {"x86_64": dict.fromkeys(sorted(REGIONS), 1)}
    assert publisher_account(layers) == "123456789012"
    table = manifest.with_suffix(".md").read_text().splitlines()
    assert table[0] == "| Region | Architecture | Version | Package | ARN | SHA-256 |"
    assert len(table) == 2 + len(REGIONS)
    capsys.readouterr()
    assert (
        cli.main(
            [
                "arn",
                "--region",
                "eu-west-1",
                "--architecture",
                "x86_64",
                "--manifest",
                str(manifest),
            ]
        )
        == arn_lookup.EXIT_OK
    )
    assert capsys.readouterr().out.strip() == layers["x86_64"].regions["eu-west-1"].arn
    assert (
        cli.main(
            [
                "arn",
                "--region",
                "eu-north-1",
                "--architecture",
                "x86_64",
                "--manifest",
                str(manifest),
            ]
        )
        == arn_lookup.EXIT_NOT_FOUND
    )
    assert cli.main([*argv, "--runtimes", "python2.7"]) == publish.EXIT_USAGE


def test_region_lists() -> None:
    assert parse_regions("commercial") == COMMERCIAL_REGIONS
    assert parse_regions("eu-west-1, us-east-1,eu-west-1") == ("eu-west-1", "us-east-1")
    with pytest.raises(ValueError, match="'europe' is not a region name"):
        parse_regions("eu-west-1,europe")
