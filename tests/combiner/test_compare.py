"""The trend: ``--compare PREVIOUS`` shows the change since an earlier summary of ours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from coverage_combiner.cli import EXIT_ERROR, EXIT_OK, main
from tests.combiner.conftest import key, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

APP = "def handler(event, context):\n    if event:\n        return 1\n    return 2\n"


def run(
    tmp_path: Path, name: str, lines: dict[str, set[int]], *extra: str
) -> tuple[int, dict[str, Any], str]:
    """Combine one run of ``{function: lines of app.py}``; the exit code, the JSON summary
    and the Markdown."""
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "app.py").write_text(APP)
    inputs = tmp_path / name / "in"
    for function, numbers in lines.items():
        write_data(
            inputs / key(function=function), lines={f"{function}@$LATEST": {"app.py": numbers}}
        )
    out = tmp_path / name / "out"
    args = ["combine", str(inputs), "-o", str(out), "--source-root", str(source)]
    code = main([*args, "--format", "json,markdown", *extra])
    if not out.exists():
        return code, {}, ""
    summary = json.loads((out / "coverage-summary.json").read_text())
    return code, summary, (out / "coverage-summary.md").read_text()


@pytest.fixture
def previous(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An earlier run: orders ran lines 1-3 of 4 (75 %), billing line 1 (25 %)."""
    code, summary, _ = run(tmp_path, "before", {"orders": {1, 2, 3}, "billing": {1}})
    assert code == EXIT_OK
    assert summary["functions"]["orders"]["percent_covered"] == 75.0
    assert summary["functions"]["billing"]["percent_covered"] == 25.0
    assert summary["totals"]["percent_covered"] == 75.0
    capsys.readouterr()
    return tmp_path / "before" / "out" / "coverage-summary.json"


def test_the_change_per_function_and_in_total(
    tmp_path: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Now orders runs every line, billing is gone and refunds is new (lines 1-2: 50 %).
    now = {"orders": {1, 2, 3, 4}, "refunds": {1, 2}}
    code, summary, markdown = run(tmp_path, "after", now, "--compare", str(previous))
    printed = capsys.readouterr().out
    assert code == EXIT_OK
    assert summary["totals"]["change"] == {"percent_covered": 25.0}
    assert summary["functions"]["orders"]["change"] == {"percent_covered": 25.0}
    assert summary["functions"]["refunds"]["change"] == {"new": True}
    assert summary["comparison"] == {
        "previous": str(previous),
        "removed_functions": {"billing": 25.0},
    }
    assert "**100.0%** covered" in markdown
    assert "Change since the previous run: +25.00." in markdown
    assert "| Function | Versions | Files | Executed lines | Cover | Change |" in markdown
    assert "| orders | $LATEST | 1 | 4 | 100.0% | +25.00 |" in markdown
    assert "| refunds | $LATEST | 1 | 2 | 50.0% | new |" in markdown
    assert "Removed since the previous run: billing" in markdown
    table = printed.splitlines()
    header = next(line for line in table if line.startswith("Function"))
    assert header.split() == [
        "Function", "Versions", "Files", "Executed", "Cover", "Change", "Source"
    ]  # fmt: skip
    orders = next(line for line in table if line.startswith("orders"))
    assert orders.split()[:6] == ["orders", "$LATEST", "1", "4", "100.0%", "+25.00"]
    refunds = next(line for line in table if line.startswith("refunds"))
    assert refunds.split()[:6] == ["refunds", "$LATEST", "1", "2", "50.0%", "new"]
    assert "Total change since the previous run: +25.00" in table
    assert "Removed since the previous run: billing" in table


def test_deltas_are_exact_and_bad_figures_show_no_change(
    tmp_path: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = json.loads(previous.read_text())
    earlier["totals"]["percent_covered"] = 66.666
    earlier["functions"]["orders"]["percent_covered"] = 80.126
    earlier["functions"]["billing"]["percent_covered"] = "high"
    previous.write_text(json.dumps(earlier))
    now = {"orders": {1, 2, 3}, "billing": {1, 2}}
    code, summary, markdown = run(tmp_path, "after", now, "--compare", str(previous))
    assert code == EXIT_OK
    # 75.0 - 66.666 and 75.0 - 80.126, in percentage points rounded as percentages are.
    assert summary["totals"]["change"] == {"percent_covered": 8.33}
    assert summary["functions"]["orders"]["change"] == {"percent_covered": -5.13}
    assert summary["functions"]["billing"]["change"] == {}
    assert summary["comparison"]["removed_functions"] == {}
    assert "| orders | $LATEST | 1 | 3 | 75.0% | -5.13 |" in markdown
    assert "| billing | $LATEST | 1 | 2 | 50.0% | - |" in markdown
    assert "Removed since" not in markdown
    assert "Change since the previous run: +8.33." in markdown
    # Without --compare nothing of it appears.
    code, summary, markdown = run(tmp_path, "plain", now)
    assert "comparison" not in summary
    assert "change" not in summary["totals"]
    assert "Change" not in markdown


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read"),
        (b"{not json", "not JSON"),
        (b'{"totals": {}}', "not a summary of ours (no 'functions')"),
        (b"[1, 2]", "not a summary of ours (no 'functions')"),
    ],
)
def test_a_bad_previous_summary_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, problem: str
) -> None:
    bad = tmp_path / "old.json"
    if content is not None:
        bad.write_bytes(content)
    code, _, _ = run(tmp_path, "after", {"orders": {1}}, "--compare", str(bad))
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert err.startswith(f"lambda-coverage: error: --compare {bad}: {problem}")
    assert "give a coverage-summary.json written by an earlier lambda-coverage run" in err
    assert not (tmp_path / "after" / "out").exists()


def test_the_previous_summary_from_s3(
    tmp_path: Path, previous: Path, s3: S3Client, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=bucket, Key="reports/coverage-summary.json", Body=previous.read_bytes())
    where = f"s3://{bucket}/reports/coverage-summary.json"
    code, summary, _ = run(tmp_path, "after", {"orders": {1, 2}}, "--compare", where)
    assert code == EXIT_OK
    assert summary["functions"]["orders"]["change"] == {"percent_covered": -25.0}
    assert summary["totals"]["change"] == {"percent_covered": -25.0}
    assert summary["comparison"] == {"previous": where, "removed_functions": {"billing": 25.0}}
    code, _, _ = run(tmp_path, "missing", {"orders": {1}}, "--compare", where + ".gone")
    assert code == EXIT_ERROR
    assert f"--compare {where}.gone: cannot be read" in capsys.readouterr().err


def test_names_from_the_previous_summary_are_shown_as_text(
    tmp_path: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = json.loads(previous.read_text())
    earlier["functions"]["evil\x1b[2J|*x*"] = {"percent_covered": 10.0}
    previous.write_text(json.dumps(earlier))
    code, summary, markdown = run(tmp_path, "after", {"orders": {1}}, "--compare", str(previous))
    printed = capsys.readouterr().out
    assert code == EXIT_OK
    assert summary["comparison"]["removed_functions"] == {"billing": 25.0, "evil\x1b[2J|*x*": 10.0}
    assert "\x1b" not in printed
    assert "Removed since the previous run: billing, evil\\x1b[2J|*x*" in printed.splitlines()
    removed = next(line for line in markdown.splitlines() if line.startswith("Removed since"))
    # A name that is not an ordinary one is code, shown as it is: no markup, no escape sent.
    assert removed == "Removed since the previous run: billing, `evil\\x1b[2J|*x*`"
