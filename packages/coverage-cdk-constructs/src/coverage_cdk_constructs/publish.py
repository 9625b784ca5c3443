"""``lambda-coverage-layer publish``: one layer zip to many regions, idempotently, versions aligned.

What a run does, per region and in parallel (:func:`publish_layer`):

1. *Inspect*: the layer's latest version, whether it holds this zip (its
   description carries ``sha256:<hex>``; Lambda's own ``CodeSha256`` is
   compared too) and whether its policy grants the wanted sharing.
2. *Align*: the target version number is the highest any region needs: a
   region that already holds the zip needs its latest version, any other one
   more than its latest. A region below the target publishes the zip until
   its version number reaches the target; the versions it passes on the way
   hold the same zip, so every one of them is a correct layer (Lambda never
   reuses a version number, so the gap cannot be closed any other way). If a
   region overshoots (a version was published or deleted behind our back),
   the target rises and the others catch up, a few rounds at most.
3. *Share*: the wanted statements (public, one organisation, or accounts)
   are added to the region's final version, and statements of ours that are
   no longer wanted are removed. Statements of others are left alone.
4. *Canary* (when one is given): the new version runs the canary function;
   only if it passes are the SSM parameters
   (:func:`coverage_cdk_constructs.arn_lookup.parameter_names`) written.

A region that already has the zip, the sharing and its SSM parameters gets
no new version and no canary run. A region that fails is reported and the
exit code is 1; running the same command again completes only what is
missing. Retries of throttled or failed calls are botocore's (standard mode
with ``--max-attempts``), not a loop of ours.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from coverage_cdk_constructs.arn_lookup import SSM_PREFIX, SsmClient, write_parameters
from coverage_cdk_constructs.canary import Canary
from coverage_cdk_constructs.lambda_platform import MACHINES, SUPPORTED_PYTHONS
from coverage_cdk_constructs.manifest import (
    RegionEntry,
    published_layer_name,
    update_manifest,
)
from coverage_cdk_constructs.regions import parse_regions
from coverage_wrapper.__about__ import __version__ as WRAPPER_VERSION

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_lambda import LambdaClient

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
#: Statement IDs of the layer policy that this publisher owns (and may remove).
STATEMENT_PREFIX: Final = "lambda-coverage-"
#: Rounds of catching up after a region overshot the target version.
MAX_ALIGN_ROUNDS: Final = 3
DEFAULT_MAX_ATTEMPTS: Final = 8
#: What Lambda's AddLayerVersionPermission takes as one account (its Principal
#: also takes ``*``, which means every AWS account: only :attr:`Sharing.public`
#: asks for that).
ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
#: What it takes as OrganizationId (with the principal ``*``).
ORGANIZATION_ID: Final = re.compile(r"o-[a-z0-9]{10,32}")
_SHARING_FORMS: Final = (
    "give 12-digit account ids (123456789012); an organisation is --org-id o-a1b2c3d4e5, "
    "every AWS account --public"
)


def retry_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    """botocore's retries (standard mode: throttling, 5xx and connection errors, backoff)."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=120,
    )


def lambda_clients(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable[[str], LambdaClient]:
    """A Lambda client per region, from the default credentials, with :func:`retry_config`."""
    import boto3

    session = boto3.session.Session()
    config = retry_config(max_attempts)
    return lambda region: session.client("lambda", region_name=region, config=config)


def ssm_clients(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable[[str], SsmClient]:
    """An SSM client per region, from the default credentials, with :func:`retry_config`."""
    import boto3

    session = boto3.session.Session()
    config = retry_config(max_attempts)
    return lambda region: session.client("ssm", region_name=region, config=config)


def account_id(text: str) -> str:
    """``text`` if it is a 12-digit AWS account id; else ValueError naming it and what is taken.

    ``*`` (every account) and organisation ids are refused here: they have
    their own, explicit ways (``--public``, ``--org-id``).
    """
    if ACCOUNT_ID.fullmatch(text):
        return text
    if ORGANIZATION_ID.fullmatch(text):
        raise ValueError(f"{text!r} is an organisation id, not an account id: {_SHARING_FORMS}")
    raise ValueError(f"{text!r} is not an AWS account id: {_SHARING_FORMS}")


def organization_id(text: str) -> str:
    """``text`` if it is an AWS Organizations id (``o-``, 10-32 of ``a-z 0-9``); else ValueError."""
    if ORGANIZATION_ID.fullmatch(text):
        return text
    raise ValueError(
        f"{text!r} is not an AWS Organizations id: give o- and 10 to 32 lowercase letters or "
        "digits (o-a1b2c3d4e5)"
    )


def _argument(check: Callable[[str], str]) -> Callable[[str], str]:
    """``check`` as an argparse ``type``: its ValueError becomes a usage error (exit 2)."""

    def parse(text: str) -> str:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = check.__name__
    return parse


@dataclass(frozen=True)
class Sharing:
    """Who may use the layer: nobody else, everyone, one organisation, or some accounts.

    Every AWS account (principal ``*``) only with ``public=True``: an account
    or organisation id that is not one (:func:`account_id`,
    :func:`organization_id`) raises ValueError.
    """

    public: bool = False
    org_id: str | None = None
    accounts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.org_id is not None:
            organization_id(self.org_id)
        for account in self.accounts:
            account_id(account)

    def statements(self) -> dict[str, tuple[str, str | None]]:
        """The wanted policy statements: ``{statement id: (principal, organisation)}``."""
        wanted: dict[str, tuple[str, str | None]] = {}
        if self.public:
            wanted[f"{STATEMENT_PREFIX}public"] = ("*", None)
        if self.org_id:
            wanted[f"{STATEMENT_PREFIX}org-{self.org_id}"] = ("*", self.org_id)
        for account in self.accounts:
            wanted[f"{STATEMENT_PREFIX}account-{account}"] = (account, None)
        return wanted

    def __str__(self) -> str:
        if self.public:
            return "public"
        if self.org_id:
            return f"organisation {self.org_id}"
        if self.accounts:
            return f"accounts {', '.join(self.accounts)}"
        return "private"


@dataclass(frozen=True)
class PublishRequest:
    """One zip to publish as ``layer_name`` in ``regions``."""

    zip_path: Path
    layer_name: str
    architecture: str
    runtimes: tuple[str, ...]
    regions: tuple[str, ...]
    sharing: Sharing = Sharing()
    package_version: str = WRAPPER_VERSION
    dry_run: bool = False
    ssm_prefix: str = SSM_PREFIX

    @property
    def pythons(self) -> tuple[str, ...]:
        """``3.12`` for ``python3.12``: the Pythons the SSM parameters are written for."""
        return tuple(runtime.removeprefix("python") for runtime in self.runtimes)


@dataclass(frozen=True)
class RegionResult:
    """The outcome in one region.

    ``status``: ``unchanged``, ``published``, ``shared`` (sharing changed
    only), ``would-publish``/``would-share`` (dry run) or ``failed``.
    """

    region: str
    status: str
    version: int | None = None
    arn: str | None = None
    created: tuple[int, ...] = ()
    canary: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """The region did not end with a working, checked layer version."""
        return self.status == "failed" or (self.canary is not None and self.canary != "passed")


@dataclass
class PublishReport:
    """Every region's outcome, the zip's SHA-256 and the aligned version number."""

    sha256: str
    target_version: int | None
    results: dict[str, RegionResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No region failed."""
        return not any(r.failed for r in self.results.values())


@dataclass(frozen=True)
class _RegionState:
    region: str
    latest: int
    holds_zip: bool
    arn: str | None


class _Region:
    """The calls of one region (one client), for one request."""

    def __init__(self, request: PublishRequest, region: str, client: LambdaClient, sha: str):
        self.request, self.region, self.client, self.sha = request, region, client, sha

    @property
    def description(self) -> str:
        r = self.request
        return f"Lambda Coverage {r.package_version} ({r.architecture}) sha256:{self.sha}"

    def inspect(self) -> _RegionState:
        name = self.request.layer_name
        try:
            pages = self.client.get_paginator("list_layer_versions").paginate(LayerName=name)
            versions = [v for page in pages for v in page.get("LayerVersions", [])]
        except self.client.exceptions.ResourceNotFoundException:
            versions = []
        if not versions:
            return _RegionState(self.region, 0, False, None)
        latest = max(versions, key=lambda v: v["Version"])
        details = self.client.get_layer_version(LayerName=name, VersionNumber=latest["Version"])
        code_sha = details.get("Content", {}).get("CodeSha256")
        holds = f"sha256:{self.sha}" in details.get("Description", "") and code_sha in (
            None,
            base64.b64encode(bytes.fromhex(self.sha)).decode(),
        )
        return _RegionState(
            self.region, latest["Version"], holds, details["LayerVersionArn"] if holds else None
        )

    def publish_up_to(self, state: _RegionState, target: int, zip_bytes: bytes) -> RegionResult:
        """Publish until the latest version holds the zip and is at least ``target``."""
        version, arn, created = state.latest, state.arn, []
        while not (arn is not None and version >= target):
            answer = self.client.publish_layer_version(
                LayerName=self.request.layer_name,
                Description=self.description,
                Content={"ZipFile": zip_bytes},
                CompatibleRuntimes=list(self.request.runtimes),  # type: ignore[arg-type]
                CompatibleArchitectures=[self.request.architecture],  # type: ignore[list-item]
                LicenseInfo="MIT",
            )
            version, arn = answer["Version"], answer["LayerVersionArn"]
            created.append(version)
        shared = self.share(version)
        status = "published" if created else ("shared" if shared else "unchanged")
        return RegionResult(self.region, status, version, arn, tuple(created))

    def current_statements(self, version: int) -> dict[str, str]:
        """Our statements in the version's policy: ``{statement id: principal}``.

        The organisation is part of its statement's ID, so comparing IDs and
        principals is enough to see whether the sharing is the wanted one.
        """
        try:
            policy = self.client.get_layer_version_policy(
                LayerName=self.request.layer_name, VersionNumber=version
            )["Policy"]
        except self.client.exceptions.ResourceNotFoundException:
            return {}
        return {
            str(statement["Sid"]): _principal(statement)
            for statement in json.loads(policy).get("Statement", [])
            if str(statement.get("Sid", "")).startswith(STATEMENT_PREFIX)
        }

    def share(self, version: int) -> bool:
        """Make the version's policy grant exactly the wanted sharing; whether it changed."""
        wanted = self.request.sharing.statements()
        current = self.current_statements(version)
        if current == {sid: principal for sid, (principal, _) in wanted.items()}:
            return False
        if self.request.dry_run:
            return True
        for sid, principal in current.items():
            if sid not in wanted or wanted[sid][0] != principal:
                self.client.remove_layer_version_permission(
                    LayerName=self.request.layer_name, VersionNumber=version, StatementId=sid
                )
        for sid, (principal, organisation) in wanted.items():
            if current.get(sid) == principal:
                continue
            extra = {"OrganizationId": organisation} if organisation else {}
            self.client.add_layer_version_permission(
                LayerName=self.request.layer_name,
                VersionNumber=version,
                StatementId=sid,
                Action="lambda:GetLayerVersion",
                Principal=principal,
                **extra,
            )
        return True


def _principal(statement: dict[str, Any]) -> str:
    principal = statement.get("Principal", "")
    if isinstance(principal, dict):
        principal = principal.get("AWS", "")
    text = str(principal)
    # An account is shown as arn:aws:iam::123456789012:root once granted.
    return text.split(":")[4] if text.startswith("arn:") else text


def _failure(region: str, error: Exception) -> RegionResult:
    return RegionResult(region, "failed", error=f"{type(error).__name__}: {error}")


def publish_layer(
    request: PublishRequest,
    *,
    lambda_client: Callable[[str], LambdaClient],
    canary: Canary | None = None,
    ssm_client: Callable[[str], SsmClient] | None = None,
    max_workers: int = 16,
) -> PublishReport:
    """Publish ``request.zip_path`` to every region (see the module's docstring for the steps)."""
    zip_bytes = request.zip_path.read_bytes()
    sha = hashlib.sha256(zip_bytes).hexdigest()
    regions = {r: _Region(request, r, lambda_client(r), sha) for r in request.regions}
    report = PublishReport(sha256=sha, target_version=None)
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        states: dict[str, _RegionState] = {}
        for region, outcome in zip(
            regions, pool.map(_attempt(_Region.inspect), regions.values()), strict=True
        ):
            if isinstance(outcome, Exception):
                report.results[region] = _failure(region, outcome)
            else:
                states[region] = outcome
        if not states:
            return report
        target = max(s.latest if s.holds_zip else s.latest + 1 for s in states.values())
        if request.dry_run:
            report.target_version = target
            for region, state in states.items():
                report.results[region] = _dry_run(regions[region], state, target)
            return report
        _align(
            report, regions=regions, states=states, target=target, zip_bytes=zip_bytes, pool=pool
        )
        if canary is not None and ssm_client is not None:
            checked = [r for r in states if report.results[r].status != "failed"]
            outcomes = pool.map(
                _attempt(
                    lambda r: _canary_then_parameters(
                        request, report.results[r], canary, ssm_client
                    )
                ),
                checked,
            )
            for region, outcome in zip(checked, outcomes, strict=True):
                report.results[region] = (
                    replace(report.results[region], canary=f"error: {outcome}")
                    if isinstance(outcome, Exception)
                    else outcome
                )
    return report


_UNSET: Final = RegionResult("", "unset")


def _align(
    report: PublishReport,
    *,
    regions: dict[str, _Region],
    states: dict[str, _RegionState],
    target: int,
    zip_bytes: bytes,
    pool: ThreadPoolExecutor,
) -> None:
    """Bring every region in ``states`` to ``target`` (raised if one overshoots); record results."""
    for _ in range(MAX_ALIGN_ROUNDS):
        report.target_version = target
        behind = [r for r in states if report.results.get(r, _UNSET).version != target]
        work = [(regions[r], states[r], target) for r in behind]
        outcomes = pool.map(_attempt(lambda w: w[0].publish_up_to(w[1], w[2], zip_bytes)), work)
        for region, outcome in zip(behind, outcomes, strict=True):
            if isinstance(outcome, Exception):
                report.results[region] = _failure(region, outcome)
                del states[region]
                continue
            earlier = report.results.get(region)
            created = (earlier.created if earlier else ()) + outcome.created
            report.results[region] = replace(outcome, created=created)
            states[region] = _RegionState(region, outcome.version or 0, True, outcome.arn)
        reached = [report.results[r].version or 0 for r in states]
        if not reached or max(reached) == target:
            return
        target = max(reached)


def _attempt(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``call`` that returns its exception instead of raising: one region never stops the rest."""
    from botocore.exceptions import BotoCoreError, ClientError

    def attempt(argument: Any) -> Any:
        try:
            return call(argument)
        except (ClientError, BotoCoreError, OSError, ValueError) as error:
            return error

    return attempt


def _dry_run(region: _Region, state: _RegionState, target: int) -> RegionResult:
    if state.holds_zip and state.latest == target:
        changes = region.share(state.latest)
        return RegionResult(
            region.region, "would-share" if changes else "unchanged", state.latest, state.arn
        )
    planned = tuple(range(state.latest + 1, target + 1)) or (target,)
    return RegionResult(region.region, "would-publish", target, None, planned)


def _canary_then_parameters(
    request: PublishRequest,
    result: RegionResult,
    canary: Canary,
    ssm_client: Callable[[str], SsmClient],
) -> RegionResult:
    """Run the canary on the region's version; write its SSM parameters only if it passed."""
    assert result.arn is not None
    ssm = ssm_client(result.region)
    write = functools.partial(
        write_parameters,
        ssm,
        prefix=request.ssm_prefix,
        architecture=request.architecture,
        pythons=request.pythons,
        package_version=request.package_version,
        arn=result.arn,
    )
    # Parameters already naming this version mean its canary passed on an earlier run.
    if write(dry_run=True) == 0 and not result.created:
        return replace(result, canary="passed")
    verdict = canary.check(result.region, result.arn, request.architecture)
    if not verdict.passed:
        return replace(result, canary="failed: " + "; ".join(verdict.problems))
    write()
    return replace(result, canary="passed")


# --- the command line --------------------------------------------------------------------------


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``publish`` to the ``lambda-coverage-layer`` command line."""
    parser = subparsers.add_parser(
        "publish",
        help="publish a layer zip to many regions, idempotently",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--zip", type=Path, required=True, help="the layer zip (from build)")
    parser.add_argument(
        "--architecture", choices=sorted(MACHINES), required=True, help="the zip's architecture"
    )
    parser.add_argument(
        "--layer-name", help="default: lambda-coverage-<architecture>", default=None
    )
    parser.add_argument(
        "--runtimes",
        default=",".join(f"python{p}" for p in SUPPORTED_PYTHONS),
        help="compatible runtimes, comma-separated (default: every supported Python)",
    )
    parser.add_argument(
        "--regions", required=True, help="r1,r2,... or a named list (commercial, opt-in, ...)"
    )
    sharing = parser.add_mutually_exclusive_group()
    sharing.add_argument("--public", action="store_true", help="every AWS account may use it")
    sharing.add_argument(
        "--org-id",
        type=_argument(organization_id),
        metavar="o-ID",
        help="accounts of this organisation may use it",
    )
    sharing.add_argument(
        "--account",
        nargs="+",
        default=[],
        type=_argument(account_id),
        metavar="ACCOUNT_ID",
        help="these accounts (12-digit ids) may use it",
    )
    parser.add_argument("--package-version", default=WRAPPER_VERSION, help="for the description")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    parser.add_argument("--manifest", type=Path, help="JSON manifest to update (and its .md table)")
    parser.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    parser.add_argument("--ssm-prefix", default=SSM_PREFIX, help=f"default {SSM_PREFIX}")
    parser.add_argument(
        "--canary-role", help="execution role ARN for the canary function (enables the canary)"
    )
    parser.add_argument(
        "--canary-bucket", help="bucket for the canary's data; may contain {region}"
    )
    return parser


def request_from(args: argparse.Namespace) -> PublishRequest:
    """The :class:`PublishRequest` the parsed arguments describe; ``ValueError`` if they are bad."""
    runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
    for runtime in runtimes:
        if runtime.removeprefix("python") not in SUPPORTED_PYTHONS:
            raise ValueError(
                f"--runtimes: {runtime!r} is not one of "
                f"{', '.join('python' + p for p in SUPPORTED_PYTHONS)}"
            )
    if not args.zip.is_file():
        raise ValueError(
            f"--zip {args.zip}: no such file; build it with lambda-coverage-layer build"
        )
    return PublishRequest(
        zip_path=args.zip,
        layer_name=args.layer_name or published_layer_name(args.architecture),
        architecture=args.architecture,
        runtimes=runtimes,
        regions=parse_regions(args.regions),
        sharing=Sharing(public=args.public, org_id=args.org_id, accounts=tuple(args.account)),
        package_version=args.package_version,
        dry_run=args.dry_run,
        ssm_prefix=args.ssm_prefix,
    )


def run(
    args: argparse.Namespace,
    *,
    lambda_client: Callable[[str], LambdaClient] | None = None,
    canary: Canary | None = None,
    ssm_client: Callable[[str], SsmClient] | None = None,
) -> int:
    """Publish as ``args`` say; print a line per region; 0 ok, 1 a region failed, 2 bad usage."""
    try:
        request = request_from(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if canary is None and args.canary_role:
        if not args.canary_bucket:
            print("error: --canary-role needs --canary-bucket", file=sys.stderr)
            return EXIT_USAGE
        import boto3

        from coverage_cdk_constructs.canary import AwsCanary

        session = boto3.session.Session()
        canary = AwsCanary(
            lambda_client=lambda_client or lambda_clients(args.max_attempts),
            s3_client=lambda region: session.client("s3", region_name=region),
            role_arn=args.canary_role,
            bucket=args.canary_bucket,
        )
    if canary is not None and ssm_client is None:
        ssm_client = ssm_clients(args.max_attempts)
    report = publish_layer(
        request,
        lambda_client=lambda_client or lambda_clients(args.max_attempts),
        canary=canary,
        ssm_client=ssm_client,
    )
    print(format_report(request, report))
    if args.manifest is not None and not request.dry_run:
        entries = [
            RegionEntry(r.region, r.arn, r.version, report.sha256, request.package_version)
            for r in report.results.values()
            if not r.failed and r.arn is not None and r.version is not None
        ]
        update_manifest(args.manifest, request.architecture, request.layer_name, entries)
        print(f"manifest: {args.manifest} and {args.manifest.with_suffix('.md')}")
    return EXIT_OK if report.ok else EXIT_FAILED


def format_report(request: PublishRequest, report: PublishReport) -> str:
    """One line per region, failures last, and a summary."""
    lines = [
        f"{request.layer_name} ({request.architecture}, sha256 {report.sha256[:12]}, "
        f"{request.sharing}){' [dry run]' if request.dry_run else ''}: "
        f"version {report.target_version}"
    ]
    for result in sorted(report.results.values(), key=lambda r: (r.failed, r.region)):
        detail = result.error or result.arn or ""
        if result.created:
            detail += f" (new versions {', '.join(map(str, result.created))})"
        if result.canary:
            detail += f"; canary {result.canary}"
        lines.append(f"  {result.region:<16} {result.status:<14} {detail}")
    failed = [r.region for r in report.results.values() if r.failed]
    if failed:
        lines.append(f"failed in {', '.join(failed)}: run the same command again to finish")
    return "\n".join(lines)
