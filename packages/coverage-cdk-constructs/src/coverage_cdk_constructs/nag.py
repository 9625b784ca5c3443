"""Acknowledge, with reasons, the cdk-nag findings Lambda Coverage's resources make by design.

cdk-nag's AwsSolutions pack (v3, a CDK policy-validation plugin) reports
every wildcard in an IAM resource. Ours are deliberate and narrow: a
function may put objects only in its own folder of the raw prefix (the
wildcards are the date and the file name), and the combiner reads the raw
prefix and writes the combined one. :func:`acknowledge_coverage_findings`
records exactly those findings as acknowledged, each with its reason, via
CDK's own ``Validations.of(...).acknowledge`` (no dependency on cdk-nag).
Every other finding, including those about your own functions, is left
for you to fix or acknowledge.

Needs aws-cdk-lib 2.261 or newer (``Validations``).
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from coverage_cdk_constructs.combiner import DEFAULT_COMBINER_PYTHON, CoverageCombiner
from coverage_cdk_constructs.instrument import WRITE_POLICY_ID

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
COMBINER_RUNTIME_REASON: Final = (
    f"Lambda Coverage combiner: Python {DEFAULT_COMBINER_PYTHON} is the newest Python the "
    "combiner is tested on"
)


def acknowledge_coverage_findings(scope: IConstruct) -> list[str]:
    """Acknowledge the by-design findings of every Lambda Coverage resource under ``scope``.

    Call it after the constructs are made (e.g. at the end of your stack's
    constructor). Returns the acknowledged finding ids, for the record.
    """
    if not hasattr(cdk, "Validations"):
        raise RuntimeError(
            "acknowledge_coverage_findings needs aws-cdk-lib 2.261 or newer (Validations); "
            "upgrade aws-cdk-lib"
        )
    acknowledged: list[str] = []
    for construct in scope.node.find_all():
        if isinstance(construct, iam.Policy) and construct.node.id == WRITE_POLICY_ID:
            acknowledged += _acknowledge_wildcards(construct, construct.document, WRITE_REASON)
        elif isinstance(construct, CoverageCombiner):
            acknowledged += _acknowledge_combiner(construct)
    return acknowledged


def _acknowledge_combiner(combiner: CoverageCombiner) -> list[str]:
    role = combiner.function.role
    if role is None:
        return []
    done: list[str] = []
    policy = role.node.try_find_child("DefaultPolicy")
    if isinstance(policy, iam.Policy):
        done += _acknowledge_wildcards(policy, policy.document, COMBINER_REASON)
    done += acknowledge(role, f"AwsSolutions-IAM4[{BASIC_EXECUTION_ROLE}]", COMBINER_LOGS_REASON)
    if combiner.function.runtime.name == f"python{DEFAULT_COMBINER_PYTHON}":
        done += acknowledge(combiner.function, "AwsSolutions-L1", COMBINER_RUNTIME_REASON)
    return done


def _acknowledge_wildcards(
    policy: IConstruct, document: iam.PolicyDocument, reason: str
) -> list[str]:
    stack = cdk.Stack.of(policy)
    resolved = stack.resolve(document.to_json())
    done: list[str] = []
    for statement in resolved.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            text = nag_text(resource)
            if "*" in text or "?" in text:
                done += acknowledge(policy, f"AwsSolutions-IAM5[Resource::{text}]", reason)
    return done


def acknowledge(construct: IConstruct, finding: str, reason: str) -> list[str]:
    """Acknowledge one AwsSolutions ``finding`` on ``construct`` and everything under it."""
    finding_id = f"{PACK}::{finding}"
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding_id, reason=reason))
    return [finding_id]


def nag_text(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in a finding's id.

    ``{"Ref": "X"}`` is ``<X>``, ``{"Fn::GetAtt": ["X", "Arn"]}`` is
    ``<X.Arn>``, and ``Fn::Join`` is joined.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(nag_text(p) for p in parts)
    raise ValueError(f"cannot write {value!r} as cdk-nag does")
