"""The JSON summary and its Markdown rendering (for CI job summaries and PR comments).

With the source at hand, totals and per-file figures come from coverage.py's
own JSON report, and per-function figures from the ``function@version``
contexts. Without it, the summary still says what was executed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from coverage_combiner.__about__ import __version__
from coverage_combiner.compare import change_text
from coverage_combiner.merge import bits_to_lines, lines_to_bits, split_context
from coverage_wrapper.attribution import INIT, parse_context
from coverage_wrapper.untrusted_text import (
    markdown_code,
    markdown_name,
    markdown_text,
    terminal_text,
)

if TYPE_CHECKING:
    from coverage_combiner.combine import CombineResult
    from coverage_combiner.remap import PathRemapper


def build_summary(
    result: CombineResult, report: dict[str, Any] | None, remap: PathRemapper
) -> dict[str, Any]:
    """A JSON-serialisable summary of a combine."""
    merged = result.merged
    functions: dict[str, dict[str, Any]] = {}
    # Executed lines as bit sets (bit n is line n), as the merge keeps them.
    executed: dict[str, dict[str, int]] = {}
    # Per function, lines run at init and lines run otherwise (invocations).
    at_init: dict[str, dict[str, int]] = {}
    invoked: dict[str, dict[str, int]] = {}
    # Per (function, measured path), where its lines are reported (None: refused).
    # Contexts are many (hundreds of thousands are valid), paths few.
    places: dict[tuple[str | None, str], str | None] = {}
    for (context, path), lines in merged.iter_executed():
        function, version = split_context(context)
        owner = function if version is not None else None
        if (owner, path) not in places:
            refused = (owner, path) in remap.refused
            places[owner, path] = None if refused else remap.map(path, owner)
        local = places[owner, path]
        if local is None:
            continue
        files = executed.setdefault(function, {})
        files[local] = files.get(local, 0) | lines
        phase = at_init if parse_context(context).phase == INIT else invoked
        phase_files = phase.setdefault(function, {})
        phase_files[local] = phase_files.get(local, 0) | lines
    files_report: dict[str, Any] = (report or {}).get("files", {})
    # coverage.py names files relative to the working folder where it can.
    by_absolute = {os.path.abspath(name): info for name, info in files_report.items()}
    branch_measured = {split_context(c)[0] for c in {c for c, _ in merged.branch_arcs}}
    for function, files in sorted(executed.items()):
        entry: dict[str, Any] = {
            "versions": result.versions.kept.get(function, []),
            # Whether this function's own data has branches (mixed kinds merge).
            "branch": merged.has_arcs and function in branch_measured,
            "files": len(files),
            "executed_lines": sum(lines.bit_count() for lines in files.values()),
        }
        if function in at_init:
            entry["only_at_init"] = _only_at_init(at_init[function], invoked.get(function, {}))
        if report is not None:
            statements = 0
            covered = 0
            for path, lines in files.items():
                info = by_absolute.get(path)
                if info is None:
                    continue
                stmts = lines_to_bits({*info["executed_lines"], *info["missing_lines"]})
                statements += stmts.bit_count()
                covered += (stmts & lines).bit_count()
            entry["statements"] = statements
            entry["percent_covered"] = round(100 * covered / statements, 2) if statements else 100.0
        functions[function] = entry
    summary: dict[str, Any] = {
        "combiner_version": __version__,
        "branch": merged.has_arcs,
        "inputs": {
            "merged": len(merged.inputs),
            "superseded_snapshots": result.superseded,
            "identical_to_another": result.duplicates,
            "rejected": [{"input": name, "reason": reason} for name, reason in result.rejected],
            "skipped": [{"input": name, "reason": reason} for name, reason in result.skipped],
            # Plainly no data (sources, reports, configuration): listed, not a problem.
            "not_data": [{"input": name, "reason": reason} for name, reason in result.not_data],
            "skipped_not_data": len(result.skipped) + len(result.not_data) + result.probes,
        },
        "warnings": list(result.warnings),
        # Measured paths whose source was never read (they name files outside the
        # folders given), so their lines are in no report.
        "refused_paths": [
            {"function": function, "path": path, "reason": reason}
            for (function, path), reason in sorted(
                remap.refused.items(), key=lambda item: (item[0][0] or "", item[0][1])
            )
        ],
        "functions": functions,
        # Where each function's code was read from: a guess made visible.
        "sources": {
            function: relative_to_here(remap.function_roots.get(function, remap.root or "."))
            for function in sorted(executed)
        },
    }
    if report is not None:
        totals = report["totals"]
        summary["totals"] = _figures(totals)
        summary["files"] = {
            path: _figures(info["summary"]) for path, info in sorted(files_report.items())
        }
    else:
        summary["totals"] = None
        summary["files"] = {
            path: {"executed_lines": lines.bit_count()}
            for path, lines in sorted(_all_files(executed).items())
        }
        summary["note"] = "source not available: percentages need --source-root or --source-zip"
    return summary


def _only_at_init(at_init: dict[str, int], invoked: dict[str, int]) -> dict[str, list[int]]:
    """Lines covered only by cold starts (module import), per file."""
    only = {path: bits & ~invoked.get(path, 0) for path, bits in at_init.items()}
    return {path: sorted(bits_to_lines(bits)) for path, bits in sorted(only.items()) if bits}


def _all_files(executed: dict[str, dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for files in executed.values():
        for path, lines in files.items():
            merged[path] = merged.get(path, 0) | lines
    return merged


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    figures = {
        "statements": summary["num_statements"],
        "covered_lines": summary["covered_lines"],
        "missing_lines": summary["missing_lines"],
        "percent_covered": round(float(summary["percent_covered"]), 2),
    }
    if "num_branches" in summary:
        figures["branches"] = summary["num_branches"]
        figures["covered_branches"] = summary["covered_branches"]
        figures["partial_branches"] = summary["num_partial_branches"]
    return figures


def relative_to_here(path: str) -> str:
    """``path`` relative to the working folder when it is below it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith("..") else relative


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: totals, files, functions, problems.

    Every name in it comes from data (functions, versions, paths, inputs,
    warnings that quote them) and is written through
    :mod:`coverage_wrapper.untrusted_text`: shown as it is, never as markup.
    """
    lines = ["## Lambda Coverage", ""]
    totals = summary.get("totals")
    inputs = summary["inputs"]
    functions = summary["functions"]
    if totals:
        branch = (
            f", branches {totals['covered_branches']}/{totals['branches']}"
            if "branches" in totals
            else ""
        )
        lines.append(
            f"**{totals['percent_covered']:.1f}%** covered — lines "
            f"{totals['covered_lines']}/{totals['statements']}{branch} — from "
            f"{inputs['merged']} data files of {len(functions)} function(s)."
        )
        if "comparison" in summary:
            lines[-1] += f" Change since the previous run: {change_text(totals)}."
        lines += ["", "| File | Statements | Missing | Cover |", "| --- | ---: | ---: | ---: |"]
        for path, figures in summary["files"].items():
            lines.append(
                f"| {markdown_code(path, in_table=True)} | {figures['statements']} "
                f"| {figures['missing_lines']} | {figures['percent_covered']:.1f}% |"
            )
    else:
        lines.append(
            f"{inputs['merged']} data files of {len(functions)} function(s). {summary['note']}."
        )
    comparing = "comparison" in summary
    lines += [
        "",
        "| Function | Versions | Files | Executed lines | Cover |"
        + (" Change |" if comparing else ""),
        "| --- | --- | ---: | ---: | ---: |" + (" ---: |" if comparing else ""),
    ]
    for name, entry in functions.items():
        cover = f"{entry['percent_covered']:.1f}%" if "percent_covered" in entry else "—"
        lines.append(
            f"| {markdown_name(name, in_table=True)} | {_versions(entry['versions'])} "
            f"| {entry['files']} "
            f"| {entry['executed_lines']} | {cover} |"
            + (f" {change_text(entry)} |" if comparing else "")
        )
    if comparing and summary["comparison"]["removed_functions"]:
        removed = summary["comparison"]["removed_functions"]
        lines += ["", "Removed since the previous run: " + ", ".join(map(markdown_name, removed))]
    cold = [
        (name, path, found)
        for name, entry in functions.items()
        for path, found in entry.get("only_at_init", {}).items()
    ]
    if cold:
        lines += [
            "",
            "Covered only by cold starts (run at init, by no invocation):",
            "",
            "| Function | File | Lines |",
            "| --- | --- | --- |",
        ]
        for name, path, found in cold:
            lines.append(
                f"| {markdown_name(name, in_table=True)} "
                f"| {markdown_code(relative_to_here(path), in_table=True)} | {_ranges(found)} |"
            )
    if summary["warnings"]:
        lines += ["", *[f"> ⚠️ {markdown_text(warning)}" for warning in summary["warnings"]]]
    if inputs["rejected"]:
        lines += ["", f"**{len(inputs['rejected'])} input(s) rejected:**", ""]
        lines += [_problem(r) for r in inputs["rejected"]]
    if inputs.get("skipped"):
        lines += ["", f"**{len(inputs['skipped'])} other object(s) skipped:**", ""]
        lines += [_problem(r) for r in inputs["skipped"]]
    return "\n".join(lines) + "\n"


def _versions(versions: list[str]) -> str:
    """A function's versions for a Markdown table cell."""
    return ", ".join(markdown_name(v, in_table=True) for v in versions) or "—"


def _problem(entry: dict[str, str]) -> str:
    """A rejected or skipped input as a Markdown list item: its name, then why."""
    return f"- {markdown_code(entry['input'])}: {markdown_text(entry['reason'])}"


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1-3, 7``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def render_table(summary: dict[str, Any]) -> str:
    """The summary as aligned text tables for a terminal, in ``coverage report``'s style.

    Paths are as coverage.py names them: relative to the working folder when
    they are below it.
    """
    inputs = summary["inputs"]
    functions = summary["functions"]
    totals = summary.get("totals")
    out: list[str] = []
    if totals:
        branch = "branches" in totals
        header = ["Name", "Stmts", "Miss", *(["Branch", "BrPart"] if branch else []), "Cover"]
        rows = [_file_row(path, figures, branch) for path, figures in summary["files"].items()]
        out += _aligned(header, rows, _file_row("TOTAL", totals, branch))
    else:
        rows = [[path, str(f["executed_lines"])] for path, f in summary["files"].items()]
        out += _aligned(["Name", "Executed lines"], rows)
        out.append(f"({summary['note']})")
    out.append("")
    function_rows = [
        [
            name,
            ", ".join(entry["versions"]) or "-",
            str(entry["files"]),
            str(entry["executed_lines"]),
            f"{entry['percent_covered']:.1f}%" if "percent_covered" in entry else "-",
            summary.get("sources", {}).get(name, ""),
        ]
        for name, entry in functions.items()
    ]
    header = ["Function", "Versions", "Files", "Executed", "Cover", "Source"]
    if "comparison" in summary:
        header.insert(5, "Change")
        for row, entry in zip(function_rows, functions.values(), strict=True):
            row.insert(5, change_text(entry))
        out += _aligned(header, function_rows, left={0, 1, 6})
        removed = summary["comparison"]["removed_functions"]
        if totals:
            out.append(f"Total change since the previous run: {change_text(totals)}")
        if removed:
            out.append(terminal_text("Removed since the previous run: " + ", ".join(removed)))
    else:
        out += _aligned(header, function_rows, left={0, 1, 5})
    counts = [f"{inputs['merged']} data file(s) of {len(functions)} function(s) merged"]
    if inputs.get("superseded_snapshots"):
        counts.append(f"{inputs['superseded_snapshots']} older snapshot(s) not read")
    if inputs["rejected"]:
        counts.append(f"{len(inputs['rejected'])} rejected")
    if inputs.get("not_data"):
        counts.append(f"{len(inputs['not_data'])} file(s) not coverage data passed over")
    out += ["", ", ".join(counts) + "."]
    return "\n".join(out) + "\n"


def _file_row(name: str, figures: dict[str, Any], branch: bool) -> list[str]:
    row = [name, str(figures["statements"]), str(figures["missing_lines"])]
    if branch:
        row += [str(figures.get("branches", 0)), str(figures.get("partial_branches", 0))]
    return [*row, f"{figures['percent_covered']:.1f}%"]


def _aligned(
    header: list[str],
    rows: list[list[str]],
    total: list[str] | None = None,
    *,
    left: frozenset[int] | set[int] = frozenset({0}),
) -> list[str]:
    """Columns padded to their widest cell: text columns (``left``) left-aligned, figures right.

    Cells are names from data: their control characters are shown, not sent.
    """
    header, total = [terminal_text(c) for c in header], total and [terminal_text(c) for c in total]
    rows = [[terminal_text(cell) for cell in row] for row in rows]
    every = [header, *rows, *([total] if total else [])]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [
            cell.ljust(width) if column in left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "   ".join(cells).rstrip()

    rule = "-" * len(line(["-" * w for w in widths]))
    lines = [line(header), rule, *(line(row) for row in rows)]
    if total:
        lines += [rule, line(total)]
    return lines
