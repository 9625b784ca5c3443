"""Read synthesised templates: intrinsic functions rendered as text, IAM statements by role."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct


def logical_id(construct: IConstruct) -> str:
    """The logical ID of ``construct``'s CloudFormation resource (or of the resource itself)."""
    element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    assert isinstance(element, cdk.CfnElement), construct.node.path
    assert element is not None
    return cdk.Stack.of(construct).get_logical_id(element)


def role_id(function: lambda_.IFunction) -> str:
    """The logical ID of ``function``'s execution role."""
    assert function.role is not None, function.node.path
    return logical_id(function.role)


def render(value: Any) -> Any:
    """``{"Ref": "X"}`` as ``"<X>"``, ``GetAtt`` as ``"<X.Arn>"``, ``Fn::Join`` joined."""
    if isinstance(value, list):
        return [render(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(p)) for p in parts)
    return {k: render(v) for k, v in value.items()}


def as_list(value: Any) -> list[Any]:
    """A scalar-or-list IAM field as a list."""
    return value if isinstance(value, list) else [value]


def statements_for_role(template: assertions.Template, role_id: str) -> list[dict[str, Any]]:
    """Every IAM statement of every policy attached to the role with logical ID ``role_id``.

    Rendered, with ``Action`` and ``Resource`` as sorted lists.
    """
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        properties = policy["Properties"]
        if {"Ref": role_id} not in properties.get("Roles", []):
            continue
        for statement in properties["PolicyDocument"]["Statement"]:
            rendered = render(statement)
            rendered["Action"] = sorted(as_list(rendered["Action"]))
            rendered["Resource"] = sorted(as_list(rendered["Resource"]))
            found.append(rendered)
    return sorted(found, key=lambda s: (s["Action"], s["Resource"]))


def concrete(value: Any, values: dict[str, str]) -> Any:
    """``value`` rendered, each placeholder ``<X>`` (or ``<X.Arn>``) replaced by ``values["X"]``.

    (``values`` is keyed by the placeholder without its brackets.) A
    placeholder left without a value raises: a policy judged on a half-known
    ARN would judge nothing.
    """
    if isinstance(value, list):
        return [concrete(v, values) for v in value]
    if isinstance(value, dict) and not {"Ref", "Fn::GetAtt", "Fn::Join"} & set(value):
        return {k: concrete(v, values) for k, v in value.items()}
    text = render(value)
    if not isinstance(text, str):
        return concrete(text, values)
    for name, replacement in values.items():
        text = text.replace(f"<{name}>", replacement)
    if re.search(r"<[^<>]+>", text):
        raise KeyError(f"no concrete value for the placeholders in {text!r}")
    return text
