"""IAM resource patterns, evaluated as IAM evaluates them (shared by the key contract tests)."""

from __future__ import annotations

import re


def iam_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regular expression: ``?`` is one character, ``*`` any run (``/`` too)."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.DOTALL,
    )
