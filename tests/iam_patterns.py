"""IAM policies, evaluated as IAM evaluates them (shared by the key contract and security tests).

A small evaluator, honest about its reach: it knows the elements and
condition operators our templates use and raises on any other, so a policy
it cannot judge fails a test instead of passing one. As in IAM, a condition
on a key the request does not carry fails (no ``...IfExists`` operator is
known here), and condition key names are matched regardless of case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Decision = Literal["allow", "explicit-deny", "implicit-deny"]

#: The principal of a request that carries no credentials.
ANONYMOUS: Final = "anonymous"

_KNOWN_ELEMENTS: Final = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition"}
)


def iam_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regular expression: ``?`` is one character, ``*`` any run (``/`` too)."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.DOTALL,
    )


@dataclass(frozen=True)
class Request:
    """One S3 call as IAM sees it.

    :param principal: the caller's ARN, or :data:`ANONYMOUS`.
    :param context: condition keys and their values, e.g. ``{"aws:SecureTransport": "true"}``.
    """

    action: str
    resource: str
    principal: str = ANONYMOUS
    context: Mapping[str, str] = field(default_factory=dict)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _any_match(patterns: Iterable[str], value: str, *, ignore_case: bool = False) -> bool:
    flags = re.IGNORECASE if ignore_case else 0
    return any(re.fullmatch(iam_regex(p).pattern, value, re.DOTALL | flags) for p in patterns)


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict) or not set(principal) <= {"AWS", "Service"}:
        raise ValueError(f"principal {principal!r} is beyond this evaluator: extend it")
    arns = _listed(principal.get("AWS", []))
    # "*" names everyone, anonymous callers included; an ARN names only itself.
    return "*" in arns or (caller != ANONYMOUS and caller in arns)


#: The condition key Lambda puts in the credentials context of requests made from a
#: function's execution environment: the function's unqualified ARN.
SOURCE_FUNCTION_ARN: Final = "lambda:SourceFunctionArn"


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ``ArnEquals``/``ArnLike``: each of the six ``:`` components matched on its own.

    ``*`` and ``?`` are wildcards within a component (the first five cannot
    reach into the next); the sixth, the resource, may hold ``:`` itself. A
    value that is not an ARN of six components matches nothing; a pattern
    that is not one is beyond this evaluator.
    """
    parts, wanted = arn.split(":", 5), pattern.split(":", 5)
    if len(wanted) != 6:
        raise ValueError(f"ARN pattern {pattern!r} has not six components: beyond this evaluator")
    if len(parts) != 6:
        return False
    return all(
        re.fullmatch(iam_regex(w).pattern, p, re.DOTALL) for w, p in zip(wanted, parts, strict=True)
    )


def _context_value(context: Mapping[str, str], key: str) -> str | None:
    # Condition key names are case-insensitive in IAM; their values are not.
    found = [value for name, value in context.items() if name.lower() == key.lower()]
    if len(found) > 1:
        raise ValueError(f"the request context names {key!r} twice (in different cases)")
    return found[0] if found else None


def _condition_matches(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = _context_value(context, key)
            if operator in ("ArnEquals", "ArnLike"):
                if actual is None or not any(arn_matches(e, actual) for e in _listed(expected)):
                    return False
            elif operator == "Bool":
                wanted = {str(v).lower() for v in _listed(expected)}
                if actual is None or actual.lower() not in wanted:
                    return False
            elif operator == "StringEquals":
                if actual is None or actual not in _listed(expected):
                    return False
            elif operator == "StringLike":
                if actual is None or not _any_match(_listed(expected), actual):
                    return False
            else:
                raise ValueError(f"condition operator {operator!r} is beyond this evaluator")
    return True


def _applies(statement: Mapping[str, Any], request: Request, *, resource_based: bool) -> bool:
    unknown = set(statement) - _KNOWN_ELEMENTS
    if unknown:
        raise ValueError(f"statement elements {sorted(unknown)} are beyond this evaluator")
    if resource_based != ("Principal" in statement):
        raise ValueError(
            f"a {'resource' if resource_based else 'identity'}-based statement "
            f"{'needs' if resource_based else 'takes no'} Principal: {statement}"
        )
    if resource_based and not _principal_matches(statement["Principal"], request.principal):
        return False
    if "Action" in statement:
        if not _any_match(_listed(statement["Action"]), request.action, ignore_case=True):
            return False
    elif _any_match(_listed(statement["NotAction"]), request.action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _any_match(_listed(statement["Resource"]), request.resource):
            return False
    elif _any_match(_listed(statement["NotResource"]), request.resource):
        return False
    return _condition_matches(statement.get("Condition", {}), request.context)


def decide(
    request: Request,
    *,
    identity: Iterable[Mapping[str, Any]] = (),
    resource: Iterable[Mapping[str, Any]] = (),
) -> Decision:
    """IAM's decision on ``request`` within one account.

    ``identity`` are the statements of the caller's policies, ``resource``
    those of the bucket policy; all with concrete ARNs. An explicit deny in
    either wins; otherwise an allow in either allows (same account); an
    anonymous caller has no identity policies.
    """
    identity, resource = list(identity), list(resource)
    if request.principal == ANONYMOUS and identity:
        raise ValueError("an anonymous caller has no identity policies")
    matched = [
        statement["Effect"]
        for statements, resource_based in ((identity, False), (resource, True))
        for statement in statements
        if _applies(statement, request, resource_based=resource_based)
    ]
    if "Deny" in matched:
        return "explicit-deny"
    return "allow" if "Allow" in matched else "implicit-deny"
