"""What the wrapper measures: the function's own code, nothing else.

By default that is the task root, minus everything that is not the user's
code even though it sits there: packages that were ``pip install --target``-ed
into the deployment package (recognised by their ``*.dist-info`` folders),
the layer (``/opt``), site-packages and the standard library. coverage.py's
``include`` already leaves out the last three; listing the vendored packages
as ``omit`` patterns keeps the first out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MeasuredScope:
    """Patterns handed to ``coverage.Coverage(include=..., omit=...)``."""

    include: tuple[str, ...]
    omit: tuple[str, ...]


def measured_scope(
    task_root: str, include: tuple[str, ...], exclude: tuple[str, ...]
) -> MeasuredScope:
    """Build the include and omit patterns for one function.

    ``include`` and ``exclude`` are the user's globs; relative ones are
    relative to the task root, which is Lambda's working directory.
    """
    root = task_root.rstrip("/") or "/"
    chosen_include = tuple(_absolute(p, root) for p in include) or (f"{root}/*",)
    omit = [
        "/opt/*",
        "*/site-packages/*",
        "*/dist-packages/*",
        *(_absolute(p, root) for p in exclude),
    ]
    for name in sorted(vendored_top_levels(root)):
        omit.extend((f"{root}/{name}/*", f"{root}/{name}.py"))
    return MeasuredScope(include=chosen_include, omit=tuple(omit))


def _absolute(pattern: str, root: str) -> str:
    if pattern.startswith(("/", "*")):
        return pattern
    return f"{root}/{pattern}"


def vendored_top_levels(task_root: str) -> set[str]:
    """Top-level module and package names installed into ``task_root`` by pip."""
    names: set[str] = set()
    try:
        entries = list(os.scandir(task_root))
    except OSError:
        return names
    for entry in entries:
        if entry.name.endswith(".dist-info") and entry.is_dir():
            names.update(_dist_info_top_levels(Path(entry.path)))
    return names


def _dist_info_top_levels(dist_info: Path) -> set[str]:
    top_level = dist_info / "top_level.txt"
    try:
        return {line.strip() for line in top_level.read_text().splitlines() if line.strip()}
    except OSError:
        pass
    # Wheels built by newer backends carry no top_level.txt: read RECORD instead.
    names: set[str] = set()
    try:
        with (dist_info / "RECORD").open(encoding="utf-8") as record:
            for line in record:
                path = line.split(",", 1)[0]
                first = path.split("/", 1)[0]
                if not first or first.endswith((".dist-info", ".data")) or first == "..":
                    continue
                names.add(first.removesuffix(".py") if "/" not in path else first)
    except OSError:
        return set()
    return names
