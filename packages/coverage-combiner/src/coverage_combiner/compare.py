"""The trend: what changed since an earlier JSON summary of ours (``--compare PREVIOUS``).

The earlier summary is read as untrusted input: a figure that is not a number
is no figure (no change is shown for it), and the names in it are written as
text wherever they are shown (:mod:`coverage_wrapper.untrusted_text`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage_combiner.errors import CombinerError
from coverage_combiner.inputs import parse_s3_url, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: What a summary given to ``--compare`` is expected to be.
_EXPECTED = "give a coverage-summary.json written by an earlier lambda-coverage run"


def load_previous(spec: str, *, s3: S3Client | None = None) -> dict[str, Any]:
    """The earlier JSON summary at ``spec`` (a local path or ``s3://bucket/key``).

    Raises :class:`CombinerError` naming the summary and what is wrong with it.
    """
    try:
        if spec.startswith("s3://"):
            bucket, key = parse_s3_url(spec)
            body: bytes = (s3 or s3_client()).get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            body = Path(spec).read_bytes()
    except Exception as exc:  # OSError, botocore's ClientError
        raise CombinerError(f"--compare {spec}: cannot be read ({exc}); {_EXPECTED}") from exc
    try:
        previous = json.loads(body)
    except ValueError as exc:
        raise CombinerError(f"--compare {spec}: not JSON ({exc}); {_EXPECTED}") from None
    if not isinstance(previous, dict) or not isinstance(previous.get("functions"), dict):
        raise CombinerError(
            f"--compare {spec}: not a summary of ours (no 'functions'); {_EXPECTED}"
        )
    return previous


def add_changes(summary: dict[str, Any], previous: dict[str, Any], source: str) -> None:
    """Write into ``summary`` the change since ``previous`` (read from ``source``).

    Per function and in total: ``"change": {"percent_covered": delta}`` (in
    percentage points, rounded as the percentages are), ``{"new": true}`` for
    a function the previous summary does not have; the functions it had and
    this one does not are ``"comparison": {"removed_functions": {name: percent}}``.
    """
    totals = summary.get("totals")
    if totals:
        totals["change"] = _change(totals, previous.get("totals"))
    before: dict[str, Any] = previous["functions"]
    for name, entry in summary["functions"].items():
        entry["change"] = _change(entry, before[name]) if name in before else {"new": True}
    summary["comparison"] = {
        "previous": source,
        "removed_functions": {
            str(name): _percent(entry)
            for name, entry in sorted(before.items())
            if name not in summary["functions"]
        },
    }


def _change(now: dict[str, Any], then: object) -> dict[str, Any]:
    """The change in percent covered from ``then`` to ``now``; empty without both figures."""
    before, after = _percent(then), _percent(now)
    if before is None or after is None:
        return {}
    return {"percent_covered": round(after - before, 2)}


def _percent(entry: object) -> float | None:
    """``entry``'s percent covered, when it is a number."""
    value = entry.get("percent_covered") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def change_text(entry: dict[str, Any]) -> str:
    """An entry's change as shown in a table: ``+1.25``, ``new``, or ``-`` for none."""
    change = entry.get("change", {})
    if change.get("new"):
        return "new"
    if "percent_covered" in change:
        return f"{change['percent_covered']:+.2f}"
    return "-"
