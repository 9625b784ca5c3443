"""Merge measured data: a union of lines and arcs per (context, file).

Merging is streaming: each file's data is added as it arrives and dropped,
so memory grows with the size of the code measured, not with the number of
data files. Line data and branch data cannot be mixed (coverage.py refuses
to); both are collected apart and, at the end, the kind most inputs have
wins and the inputs of the other kind are reported as rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from coverage_combiner.reader import Arc, MeasuredFile

_NUMBER = re.compile(r"\d+")


def split_context(context: str) -> tuple[str, str | None]:
    """``function@version`` → (function, version); other contexts → (context, None)."""
    function, sep, version = context.rpartition("@")
    if not sep or not function:
        return context, None
    return function, version


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key: ``$LATEST`` newest, then numbers numerically, then names."""
    if version in ("$LATEST", "LATEST"):
        return (2, 0, version)
    if _NUMBER.fullmatch(version):
        return (1, int(version), version)
    return (0, 0, version)


@dataclass
class Merged:
    """The union of all accepted inputs."""

    has_arcs: bool
    lines: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    arcs: dict[tuple[str, str], set[Arc]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)

    def contexts(self) -> set[str]:
        """Every context present."""
        return {context for context, _ in (self.arcs if self.has_arcs else self.lines)}

    def files(self) -> set[str]:
        """Every measured path present."""
        return {path for _, path in (self.arcs if self.has_arcs else self.lines)}

    def lines_by_file(self) -> dict[str, set[int]]:
        """Executed lines per file, all contexts together."""
        result: dict[str, set[int]] = {}
        if self.has_arcs:
            for (_, path), arcs in self.arcs.items():
                target = result.setdefault(path, set())
                target.update(a for a, _ in arcs if a > 0)
                target.update(b for _, b in arcs if b > 0)
        else:
            for (_, path), lines in self.lines.items():
                result.setdefault(path, set()).update(lines)
        return result

    def arcs_by_file(self) -> dict[str, set[Arc]]:
        """Executed arcs per file, all contexts together."""
        result: dict[str, set[Arc]] = {}
        for (_, path), arcs in self.arcs.items():
            result.setdefault(path, set()).update(arcs)
        return result


class Merger:
    """Accumulates inputs; :meth:`result` picks the data kind and applies version choice."""

    def __init__(self) -> None:
        self._by_kind = {True: Merged(has_arcs=True), False: Merged(has_arcs=False)}

    def add(self, measured: MeasuredFile) -> None:
        """Add one file's data (its kind's accumulator)."""
        target = self._by_kind[measured.has_arcs]
        target.inputs.append(measured.name)
        for key, lines in measured.lines.items():
            target.lines.setdefault(key, set()).update(lines)
        for key, arcs in measured.arcs.items():
            target.arcs.setdefault(key, set()).update(arcs)

    def result(self) -> tuple[Merged, list[tuple[str, str]]]:
        """The merged data of the majority kind, and the (input, reason) of the rest."""
        arcs, lines = self._by_kind[True], self._by_kind[False]
        keep, drop = (arcs, lines) if len(arcs.inputs) >= len(lines.inputs) else (lines, arcs)
        kind = "branch" if keep.has_arcs else "line"
        other = "line" if keep.has_arcs else "branch"
        reason = (
            f"{other} data among {len(keep.inputs)} files of {kind} data; coverage.py cannot "
            f"mix them: measure every function with the same COVERAGE_BRANCH_COVERAGE"
        )
        return keep, [(name, reason) for name in drop.inputs]


@dataclass(frozen=True)
class VersionChoice:
    """What ``--version`` kept, per function, and what it left out."""

    kept: dict[str, list[str]]
    dropped: dict[str, list[str]]


def select_versions(merged: Merged, version: str = "latest") -> tuple[Merged, VersionChoice]:
    """Keep, per function, the versions ``version`` asks for: ``latest``, ``all`` or one."""
    by_function: dict[str, set[str]] = {}
    for context in merged.contexts():
        function, found = split_context(context)
        if found is not None:
            by_function.setdefault(function, set()).add(found)
    kept: dict[str, list[str]] = {}
    dropped: dict[str, list[str]] = {}
    for function, versions in by_function.items():
        ordered = sorted(versions, key=version_order)
        if version == "all":
            chosen = ordered
        elif version == "latest":
            chosen = ordered[-1:]
        else:
            chosen = [v for v in ordered if v in (version, f"${version}")]
        kept[function] = chosen
        if len(chosen) != len(ordered):
            dropped[function] = [v for v in ordered if v not in chosen]
    keep_contexts = {
        context
        for context in merged.contexts()
        if (parts := split_context(context))[1] is None or parts[1] in kept.get(parts[0], [])
    }
    result = Merged(has_arcs=merged.has_arcs, inputs=list(merged.inputs))
    result.lines = {k: v for k, v in merged.lines.items() if k[0] in keep_contexts}
    result.arcs = {k: v for k, v in merged.arcs.items() if k[0] in keep_contexts}
    return result, VersionChoice(kept=kept, dropped=dropped)
