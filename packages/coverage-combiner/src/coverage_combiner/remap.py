"""Map measured paths to where the source is on this machine.

The wrapper records paths relative to the function's task root (and an
absolute ``/var/task/...`` path means the same). Reports read the source, so
each path is mapped: by explicit ``FROM=TO`` rules first, then onto a source
root (a checkout) or into the deployment zip (coverage.py reads source from
inside a zip). Roots can be given per function (``FUNCTION=PATH``), because
every function has its own task root and two can both have an ``app.py``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

TASK_ROOT = "/var/task/"


@dataclass(frozen=True)
class PathRemapper:
    """Rules to turn a measured path into a local one."""

    rules: tuple[tuple[str, str], ...] = ()
    root: str | None = None
    function_roots: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        paths: Sequence[str] = (),
        source_roots: Sequence[str] = (),
        source_zip: str | None = None,
    ) -> PathRemapper:
        """Build from CLI-style values: ``FROM=TO`` rules, ``[FUNCTION=]PATH`` roots, a zip."""
        rules = []
        for rule in paths:
            source, sep, target = rule.partition("=")
            if not sep or not source:
                raise ValueError(f"--paths {rule!r} is not FROM=TO, e.g. /var/task/=src/")
            rules.append((source, target))
        root: str | None = None
        function_roots: dict[str, str] = {}
        for value in source_roots:
            function, sep, path = value.partition("=")
            if sep and function and "/" not in function:
                function_roots[function] = path.rstrip("/")
            else:
                root = value.rstrip("/")
        if source_zip:
            root = source_zip.rstrip("/")
        return cls(rules=tuple(rules), root=root, function_roots=function_roots)

    def map(self, path: str, function: str | None = None) -> str:
        """Where ``path``, measured in ``function``, is to be read from (an absolute path).

        coverage.py matches data to source by absolute path, so whatever is
        still relative after the rules is taken relative to the working folder.
        """
        for source, target in self.rules:
            if path.startswith(source):
                return os.path.abspath(target + path[len(source) :])
        relative = path[len(TASK_ROOT) :] if path.startswith(TASK_ROOT) else path
        if relative.startswith("/"):
            return relative
        root = self.function_roots.get(function or "", self.root)
        return os.path.abspath(f"{root}/{relative}" if root else relative)
