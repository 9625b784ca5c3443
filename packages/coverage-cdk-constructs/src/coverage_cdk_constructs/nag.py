"""Acknowledge, with reasons, the cdk-nag findings Lambda Coverage's resources make by design.

cdk-nag's AwsSolutions pack (v3, a CDK policy-validation plugin) reports
every wildcard in an IAM resource. Ours are deliberate and narrow: a
function may put objects only in its own folder of the raw prefix (the
wildcards are the date and the file name), and the combiner reads the raw
prefix and writes the combined one. The constructs and the aspect
acknowledge exactly those findings where they create the resources (the
aspect's policies are made during synthesis), each with its reason, via
CDK's own ``Validations.of(...).acknowledge`` (no dependency on cdk-nag).
Every other finding, including those about your own functions, is left
for you to fix or acknowledge (:func:`acknowledge` helps).

Needs aws-cdk-lib 2.261 or newer (``Validations``); with an older one
nothing is acknowledged automatically.
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct, IValidation

PACK: Final = "AwsSolutions"
BASIC_EXECUTION_ROLE: Final = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)
WRITE_REASON: Final = (
    "Lambda Coverage: the function may put objects only in its own folder of the raw prefix; "
    "the wildcards stand for the date (????/??/??) and the data file's name"
)
COMBINER_REASON: Final = (
    "Lambda Coverage combiner: reads every data file under the raw prefix and the reports "
    "under the combined prefix, and writes only under the combined prefix"
)
COMBINER_LOGS_REASON: Final = (
    "Lambda Coverage combiner: the standard Lambda execution policy, CloudWatch Logs only"
)
NOTIFICATIONS_HANDLER_LOGS_REASON: Final = (
    "aws-cdk-lib's bucket-notifications handler (made for the Lambda Coverage combiner's "
    "S3 trigger): CloudWatch Logs only"
)
NOTIFICATIONS_HANDLER_REASON: Final = (
    "aws-cdk-lib's bucket-notifications handler (made for the Lambda Coverage combiner's "
    "S3 trigger) sets the notification configuration of the bucket it is given"
)


def validations_supported() -> bool:
    """Whether this aws-cdk-lib has ``Validations`` (2.261 or newer)."""
    return hasattr(cdk, "Validations")


def acknowledge_coverage_findings(scope: IConstruct) -> list[str]:
    """Acknowledge the by-design findings of every Lambda Coverage resource under ``scope``.

    Not needed any more: the constructs and the aspect acknowledge their own
    findings where they create them. Kept for stacks that call it; calling
    it again changes nothing. Returns the acknowledged finding ids.
    """
    if not validations_supported():
        raise RuntimeError(
            "acknowledge_coverage_findings needs aws-cdk-lib 2.261 or newer (Validations); "
            "upgrade aws-cdk-lib"
        )
    # Imported here: both modules acknowledge through this one.
    from coverage_cdk_constructs.combiner import CoverageCombiner, acknowledge_combiner
    from coverage_cdk_constructs.instrumenter import WRITE_POLICY_ID

    acknowledged: list[str] = []
    for construct in scope.node.find_all():
        if isinstance(construct, iam.Policy) and construct.node.id == WRITE_POLICY_ID:
            acknowledged += acknowledge_wildcards(construct, construct.document, WRITE_REASON)
        elif isinstance(construct, CoverageCombiner):
            acknowledged += acknowledge_combiner(construct)
    return acknowledged


def acknowledge_wildcards(
    policy: IConstruct, document: iam.PolicyDocument, reason: str
) -> list[str]:
    """Acknowledge each wildcard resource of ``document`` (cdk-nag's IAM5) on ``policy``.

    Once now, and once more when the app is validated: by then a reference
    to another stack's bucket has become an import, which cdk-nag writes
    by its export's name.
    """
    policy.node.add_validation(_AcknowledgeWhenResolved(policy, document, reason))
    return _acknowledge_resolved_wildcards(policy, document, reason)


@jsii.implements(IValidation)
class _AcknowledgeWhenResolved:
    def __init__(self, policy: IConstruct, document: iam.PolicyDocument, reason: str) -> None:
        self.policy, self.document, self.reason = policy, document, reason

    def validate(self) -> list[str]:
        _acknowledge_resolved_wildcards(self.policy, self.document, self.reason)
        return []


def _acknowledge_resolved_wildcards(
    policy: IConstruct, document: iam.PolicyDocument, reason: str
) -> list[str]:
    stack = cdk.Stack.of(policy)
    resolved = stack.resolve(document.to_json())
    done: list[str] = []
    for statement in resolved.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            try:
                text = nag_text(resource)
            except ValueError:
                # A form cdk-nag writes otherwise: left for the user rather than guessed.
                continue
            if "*" in text or "?" in text:
                done += acknowledge(policy, f"AwsSolutions-IAM5[Resource::{text}]", reason)
    return done


def acknowledge(construct: IConstruct, finding: str, reason: str) -> list[str]:
    """Acknowledge one AwsSolutions ``finding`` on ``construct`` and everything under it."""
    finding_id = f"{PACK}::{finding}"
    if not validations_supported():
        return []
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding_id, reason=reason))
    return [finding_id]


def nag_text(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in a finding's id.

    ``{"Ref": "X"}`` is ``<X>``, ``{"Fn::GetAtt": ["X", "Arn"]}`` is
    ``<X.Arn>``, ``Fn::ImportValue`` is the export's name, and ``Fn::Join`` is joined.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and set(value) == {"Fn::ImportValue"}:
        return nag_text(value["Fn::ImportValue"])
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(nag_text(p) for p in parts)
    raise ValueError(f"cannot write {value!r} as cdk-nag does")
