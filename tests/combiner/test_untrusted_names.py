"""Names from data are data: shown as written in Markdown and on the terminal, never obeyed.

Function names, versions, context names, measured paths and object names come
from files and buckets that others write. The Markdown summary is checked as
GitHub renders it (``cmarkgfm``, GitHub's own cmark fork with its extensions):
no element a name could bring in (image, link, emphasis, HTML) appears, every
table row keeps its cells, and each cell shows the name character for
character, control characters as visible escapes.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cmarkgfm  # type: ignore[import-untyped]
import pytest
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]

from coverage_combiner.cli import EXIT_PARTIAL, main
from coverage_combiner.lambda_handler import combine_all
from coverage_combiner.summary import render_markdown, render_table
from coverage_wrapper.untrusted_text import (
    markdown_code,
    markdown_name,
    markdown_text,
    terminal_text,
)
from tests.combiner.conftest import key, read_data, write_data

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Markup, an event handler, a link and an image, terminal escapes (OSC title
#: with BEL, CSI erase line), a bidi override, newlines, pipes and backticks.
IMAGE = "<img src=x onerror=alert(1)>"
LINKS = "fn](https://evil.example/x) ![i](https://evil.example/i.png)"
ESCAPES = "\x1b]0;owned\x07\x1b[2Kfn"
BIDI_VERSION = "1\u202egnp.exe"
PATH = "a|b`c`\n<b>\x1b[2K.py"
REJECTED = f"\x1b[31m{IMAGE}`x`.coverage"
SKIPPED = f"note\u202e{IMAGE}.txt"

#: What may never reach a terminal: C0 but the line ends we write, DEL, C1, bidi controls.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
#: Elements that only markup inside a name could produce (the summary's own bold aside).
FOREIGN = {"a", "img", "em", "del", "script", "iframe", "b", "i"}


class _Rendered(HTMLParser):
    """The tags of a rendered document and the text of each table cell, row by row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.tables: list[list[list[str]]] = []
        self.items: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.rows.append([])
            self.tables[-1].append(self.rows[-1])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.items.append("".join(self._item))
            self._item = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._item):
            if part is not None:
                part.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append("<!--")


def github(markdown: str) -> _Rendered:
    """``markdown`` as GitHub renders a comment (tables, autolinks, strikethrough, tag filter)."""
    html: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_GITHUB_PRE_LANG
    )
    rendered = _Rendered()
    rendered.feed(html)
    rendered.close()
    return rendered


def assert_only_our_markup(rendered: _Rendered, *, bold: int = 0) -> None:
    """No element a name could bring in, ``bold`` of our own, and every table row whole."""
    assert not FOREIGN & set(rendered.tags), rendered.tags
    assert rendered.tags.count("strong") == bold
    assert "<!--" not in rendered.tags
    for header, *rows in rendered.tables:
        # A row a name broke would have more or fewer cells than its header.
        assert all(len(row) == len(header) for row in rows), rendered.rows


@pytest.mark.parametrize(
    "name",
    [
        IMAGE,
        LINKS,
        ESCAPES,
        PATH,
        "x`y``z",
        "`a`",
        " lead",
        "a\\|b",
        "_em_",
        "**b**",
        "~~s~~",
        "$x$",
        "&lt;b&gt;",
        "<https://e.example>",
        "www.evil.example",
        "a@evil.example and @octocat",
        "mailto:a@b.example",
    ],
)
def test_each_escape_shows_the_name_as_written(name: str) -> None:
    shown = terminal_text(name)
    row = f"| {markdown_name(name, in_table=True)} | {markdown_text(name, in_table=True)} |"
    rendered = github(f"| A | B |\n| --- | --- |\n{row}\n\n- {markdown_code(name)}: x")
    assert_only_our_markup(rendered)
    # Markdown drops the spaces around a plain cell's text; code keeps them.
    assert rendered.rows[1] == [shown, shown.strip()]
    assert rendered.items == [f"{shown}: x"]


def test_terminal_text_leaves_nothing_that_moves_or_hides_text() -> None:
    hostile = "a\x1b]0;t\x07b\x1b[2K\r\nc\x9b31m\u202ed\u2066e\x7f\x00\t"
    assert terminal_text(hostile) == (
        "a\\x1b]0;t\\x07b\\x1b[2K\\x0d\\x0ac\\x9b31m\\u202ed\\u2066e\\x7f\\x00\\x09"
    )
    assert terminal_text("orders-api@$LATEST|invocation;run=ci-12 src/app.py é ✓") == (
        "orders-api@$LATEST|invocation;run=ci-12 src/app.py é ✓"
    )


def test_hostile_names_in_data_files_are_shown_not_obeyed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Data files outside the key layout: the contexts name the functions.
    source = tmp_path / "src"
    source.mkdir()
    (source / PATH).write_text("x = 1\ny = 2\nz = 3\n")
    (source / "app.py").write_text("x = 1\ny = 2\n")
    inputs = tmp_path / "inputs"
    write_data(
        inputs / "a.coverage",
        lines={
            f"{IMAGE}@1|init": {PATH: {1}},
            f"{IMAGE}@1|invocation": {PATH: {2}},
            f"{ESCAPES}@{BIDI_VERSION}|invocation": {"app.py": {1, 2}},
            f"{LINKS}@1|invocation": {"app.py": {1}},
        },
    )
    write_data(inputs / "b.coverage", lines={f"{LINKS}@2|invocation": {"app.py": {2}}})
    (inputs / REJECTED).write_bytes(b"not a data file")
    (inputs / SKIPPED).write_bytes(b"not a data file")
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(inputs),
            "--output",
            str(out),
            "--source-root",
            str(source),
            "--format",
            "data,json,markdown,html",
        ]
    )
    assert code == EXIT_PARTIAL
    printed = capsys.readouterr()

    markdown = (out / "coverage-summary.md").read_text()
    assert not CONTROL.search(markdown)
    path_cell = f"``{source}/a\\|b`c`\\x0a<b>\\x1b[2K.py``"
    lines = markdown.splitlines()
    for expected in [
        f"| {path_cell} | 3 | 1 | 66.7% |",
        "| `\\x1b]0;owned\\x07\\x1b[2Kfn` | `1\\u202egnp.exe` | 1 | 2 | 100.0% |",
        "| `<img src=x onerror=alert(1)>` | 1 | 1 | 2 | 66.7% |",
        f"| `{LINKS}` | 2 | 1 | 1 | 50.0% |",
        f"| `<img src=x onerror=alert(1)>` | {path_cell} | 1 |",
        "> ⚠️ `fn](https://evil.example/x)` `![i](https://evil.example/i.png):` data from "
        "versions 1, 2; reporting 2 only (--function-version latest); use --function-version "
        "all to merge them or --function-version V to choose",
        f"- ``{inputs}/\\x1b[31m{IMAGE}`x`.coverage``: "
        "not a coverage.py data file: not an SQLite database",
        f"- `{inputs}/note\\u202e{IMAGE}.txt`: "
        "not a data file (the name neither ends in .coverage nor starts with .coverage.)",
    ]:
        assert expected in lines
    rendered = github(markdown)
    # The summary's own bold: the total, the rejected and the skipped counts.
    assert_only_our_markup(rendered, bold=3)
    first_cells = {row[0] for row in rendered.rows}
    visible_path = terminal_text(f"{source}/{PATH}")
    assert {terminal_text(IMAGE), terminal_text(ESCAPES), LINKS, visible_path} <= first_cells
    assert [terminal_text(IMAGE), visible_path, "1"] in rendered.rows
    assert [terminal_text(ESCAPES), terminal_text(BIDI_VERSION), "1", "2", "100.0%"] in (
        rendered.rows
    )

    # The terminal: the same names, every control character shown, not sent.
    assert not CONTROL.search(printed.out)
    assert not CONTROL.search(printed.err)
    assert terminal_text(ESCAPES) in printed.out
    assert terminal_text(BIDI_VERSION) in printed.out
    assert f"rejected {terminal_text(str(inputs / REJECTED))}: " in printed.err
    assert f"skipped {terminal_text(str(inputs / SKIPPED))}: " in printed.err

    # The data outputs keep every name exactly.
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert set(summary["functions"]) == {IMAGE, ESCAPES, LINKS}
    assert summary["functions"][ESCAPES]["versions"] == [BIDI_VERSION]
    assert {r["input"] for r in summary["inputs"]["rejected"]} == {str(inputs / REJECTED)}
    measured_lines, _, contexts = read_data(out / ".coverage")
    assert measured_lines[str(source / PATH)] == {1, 2}
    assert f"{ESCAPES}@{BIDI_VERSION}|invocation" in contexts
    # coverage.py's HTML escapes what it shows (contexts, paths).
    for page in (out / "html").glob("*.html"):
        assert IMAGE not in page.read_text()


def test_the_scheduled_combine_escapes_names_under_proper_keys(
    s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    # The function's own object, under its own key: a hostile path, and a context
    # that claims another (hostile) function.
    local = write_data(
        tmp_path / "orders.coverage",
        lines={
            "orders@3|invocation": {PATH: {1, 2}},
            f"{IMAGE}@3|invocation": {"app.py": {1}},
        },
    )
    s3.put_object(Bucket=bucket, Key=key("orders", "3"), Body=local.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"coverage/{SKIPPED}", Body=b"x")
    combine_all(bucket, raw_prefix="coverage/", combined_prefix="coverage-combined/")
    markdown = (
        s3.get_object(Bucket=bucket, Key="coverage-combined/latest/coverage-summary.md")["Body"]
        .read()
        .decode()
    )
    assert not CONTROL.search(markdown)
    assert "| orders | 3 | 1 | 2 | — |" in markdown.splitlines()
    assert f"- `s3://{bucket}/coverage/note\\u202e{IMAGE}.txt`: " in markdown
    rendered = github(markdown)
    assert_only_our_markup(rendered, bold=markdown.count("**") // 2)
    assert ["orders", "3", "1", "2", "—"] in rendered.rows


#: A summary of ordinary names, as :func:`coverage_combiner.summary.build_summary` makes it.
ORDINARY: dict[str, Any] = {
    "combiner_version": "0",
    "branch": True,
    "inputs": {
        "merged": 3,
        "superseded_snapshots": 0,
        "identical_to_another": 0,
        "rejected": [
            {
                "input": "s3://coverage-bucket/coverage/2026/01/15/orders-api/3/c1-7-000001.coverage",
                "reason": "not a coverage.py data file: not an SQLite database",
            }
        ],
        "skipped": [
            {
                "input": "s3://coverage-bucket/coverage/README.txt",
                "reason": (
                    "not a data file (the name neither ends in .coverage "
                    "nor starts with .coverage.)"
                ),
            }
        ],
        "skipped_not_data": 1,
    },
    "warnings": [
        "orders-api: data from versions 2, 3; reporting 3 only (--function-version latest); "
        "use --function-version all to merge them or --function-version V to choose"
    ],
    "refused_paths": [],
    "functions": {
        "checkout_fn": {
            "versions": ["$LATEST"],
            "branch": True,
            "files": 1,
            "executed_lines": 7,
            "statements": 10,
            "percent_covered": 70.0,
        },
        "orders-api": {
            "versions": ["3"],
            "branch": True,
            "files": 2,
            "executed_lines": 12,
            "statements": 12,
            "percent_covered": 100.0,
            "only_at_init": {"handlers/orders_service.py": [1, 2, 3, 7]},
        },
    },
    "sources": {"checkout_fn": "src", "orders-api": "src"},
    "totals": {
        "statements": 22,
        "covered_lines": 19,
        "missing_lines": 3,
        "percent_covered": 86.36,
        "branches": 6,
        "covered_branches": 5,
        "partial_branches": 1,
    },
    "files": {
        "handlers/orders_service.py": {
            "statements": 8,
            "covered_lines": 8,
            "missing_lines": 0,
            "percent_covered": 100.0,
        },
        "checkout/app.py": {
            "statements": 10,
            "covered_lines": 7,
            "missing_lines": 3,
            "percent_covered": 70.0,
        },
        "lib/__init__.py": {
            "statements": 4,
            "covered_lines": 4,
            "missing_lines": 0,
            "percent_covered": 100.0,
        },
    },
}


def test_ordinary_names_render_as_before() -> None:
    # Byte for byte what the summary was before names were escaped.
    assert (
        render_markdown(ORDINARY)
        == """\
## Lambda Coverage

**86.4%** covered — lines 19/22, branches 5/6 — from 3 data files of 2 function(s).

| File | Statements | Missing | Cover |
| --- | ---: | ---: | ---: |
| `handlers/orders_service.py` | 8 | 0 | 100.0% |
| `checkout/app.py` | 10 | 3 | 70.0% |
| `lib/__init__.py` | 4 | 0 | 100.0% |

| Function | Versions | Files | Executed lines | Cover |
| --- | --- | ---: | ---: | ---: |
| checkout_fn | $LATEST | 1 | 7 | 70.0% |
| orders-api | 3 | 2 | 12 | 100.0% |

Covered only by cold starts (run at init, by no invocation):

| Function | File | Lines |
| --- | --- | --- |
| orders-api | `handlers/orders_service.py` | 1-3, 7 |

> ⚠️ orders-api: data from versions 2, 3; reporting 3 only (--function-version latest); \
use --function-version all to merge them or --function-version V to choose

**1 input(s) rejected:**

- `s3://coverage-bucket/coverage/2026/01/15/orders-api/3/c1-7-000001.coverage`: \
not a coverage.py data file: not an SQLite database

**1 other object(s) skipped:**

- `s3://coverage-bucket/coverage/README.txt`: not a data file (the name neither ends in \
.coverage nor starts with .coverage.)
"""
    )
    assert (
        render_table(ORDINARY)
        == """\
Name                         Stmts   Miss   Branch   BrPart    Cover
--------------------------------------------------------------------
handlers/orders_service.py       8      0        0        0   100.0%
checkout/app.py                 10      3        0        0    70.0%
lib/__init__.py                  4      0        0        0   100.0%
--------------------------------------------------------------------
TOTAL                           22      3        6        1    86.4%

Function      Versions   Files   Executed    Cover   Source
-----------------------------------------------------------
checkout_fn   $LATEST        1          7    70.0%   src
orders-api    3              2         12   100.0%   src

3 data file(s) of 2 function(s) merged, 1 rejected.
"""
    )
