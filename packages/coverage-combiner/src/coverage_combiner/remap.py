"""Map measured paths to where the source is on this machine, one function at a time.

The wrapper records paths relative to the function's task root (and an
absolute ``/var/task/...`` path means the same), so two functions can both
have an ``app.py`` that are different files. Each function's paths are mapped
on their own: by explicit ``FROM=TO`` rules first, then onto that function's
code folder, which is

1. the folder given for it (``--source-root FUNCTION=PATH``), else
2. found under the one source root (``--source-root PATH``, default the
   working folder; or the deployment zip): the folders there (the root
   itself included, four levels deep, hidden folders, ``node_modules``,
   ``cdk.out`` and ``site-packages`` left out) that hold every file the
   function measured are candidates; one whose name matches the function's
   (``orders`` for ``orders`` or ``MyStack-OrdersFn-1A2B``) wins, else the only
   candidate. When there is none, or several with nothing to choose between
   them, the function's source is reported as not found, with the reason.

A function whose folder was not found keeps its files apart all the same:
they map to ``ROOT/FUNCTION/PATH`` when the data holds several functions.
Two functions share a file only when their paths map onto the same real
file (shared code deployed into several functions), and then they merge.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from coverage_combiner.errors import clip
from coverage_wrapper.keys import key_segment

TASK_ROOT = "/var/task/"
#: How deep below a source root function folders are looked for.
SEARCH_DEPTH = 4
#: How deep below the working folder, when no source root was given: it may
#: be anything (a home folder), so only its own folders are looked at.
IMPLICIT_SEARCH_DEPTH = 1
#: Folders never searched: build output, dependencies, caches.
SKIPPED_FOLDERS = frozenset(
    {"node_modules", "cdk.out", "site-packages", "__pycache__", "venv", "dist"}
)
#: At most this many folders are looked at under one root.
MAX_FOLDERS = 20_000
#: Candidates are checked against at most this many of a function's files.
PROBE_FILES = 50

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@dataclass(frozen=True)
class PathRemapper:
    """Rules to turn a measured path, measured in one function, into a local one.

    Build it from the command line's values with :meth:`build`; call
    :meth:`resolve` with the measured files before mapping, so each function's
    code folder is found (or reported in :attr:`unresolved`).
    """

    rules: tuple[tuple[str, str], ...] = ()
    root: str | None = None
    function_roots: Mapping[str, str] = field(default_factory=dict)
    #: Functions whose code folder could not be found, with the reason.
    unresolved: Mapping[str, str] = field(default_factory=dict)
    #: Measured paths whose source is never read, per (function, path), with why:
    #: the paths in a data file are untrusted and could name any local file.
    refused: Mapping[tuple[str | None, str], str] = field(default_factory=dict)

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

    def relative(self, path: str) -> str | None:
        """The task-root-relative part of ``path``; None when a rule or an absolute path
        decides, or when it climbs out of the task root (``../``)."""
        if not path or "\x00" in path or any(path.startswith(source) for source, _ in self.rules):
            return None
        relative = path[len(TASK_ROOT) :] if path.startswith(TASK_ROOT) else path
        if relative.startswith("/") or os.path.normpath(relative).split("/")[0] == "..":
            return None
        return relative

    def resolve(self, measured: Mapping[str | None, Iterable[str]]) -> PathRemapper:
        """Find each function's code folder for the files it measured (``{function: paths}``).

        ``None`` stands for data without a function (another tool's, say):
        its paths map onto the root itself. Returns a remapper whose
        :attr:`function_roots` name a folder for every function and whose
        :attr:`unresolved` says why a folder could not be found.
        """
        wanted = {
            function: sorted({r for p in paths if (r := self.relative(p)) is not None})
            for function, paths in measured.items()
            if function is not None and function not in self.function_roots
        }
        wanted = {function: files for function, files in wanted.items() if files}
        functions = {f for f in measured if f is not None}
        found = self._find_roots(wanted, functions) if wanted else self
        refused = {
            (function, path): reason
            for function, paths in measured.items()
            for path in paths
            if (reason := found.refusal(path, function)) is not None
        }
        return replace(found, refused={**self.refused, **refused})

    def _find_roots(self, wanted: Mapping[str, list[str]], functions: set[str]) -> PathRemapper:
        base = self.root or "."
        tree = _tree(base, SEARCH_DEPTH if self.root else IMPLICIT_SEARCH_DEPTH)
        roots = dict(self.function_roots)
        unresolved = dict(self.unresolved)
        for function, files in sorted(wanted.items()):
            folder, reason = _find_folder(tree, function, files)
            if folder is not None:
                roots[function] = folder
                continue
            unresolved[function] = reason
            # Apart from the others, under a name that says whose files they are.
            # The name as the wrapper writes it into keys: safe as one folder name.
            roots[function] = f"{base}/{key_segment(function)}" if len(functions) > 1 else base
        return replace(self, function_roots=roots, unresolved=unresolved)

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

    def refusal(self, path: str, function: str | None = None) -> str | None:
        """Why the source of ``path`` (measured in ``function``) is never read; None if it may be.

        A report reads only inside the folders the user named: the target of
        a ``--paths`` rule, a source root, or the function's own folder. A
        path that climbs out of them (``../``, a symbolic link) or an absolute
        path elsewhere (``/home/u/.aws/credentials``) is refused, and so is a
        path no file can have (empty, or holding a NUL character).
        """
        if not path or "\x00" in path:
            return "it is empty or holds a NUL character: no file has such a name"
        return self._outside(path, function)

    def _outside(self, path: str, function: str | None) -> str | None:
        """Why ``path`` leaves the folders named (see :meth:`refusal`); None if it does not."""
        for source, target in self.rules:
            if path.startswith(source):
                if _inside(self.map(path, function), target or "."):
                    return None
                return f"it leaves the --paths target {target!r}"
        relative = path[len(TASK_ROOT) :] if path.startswith(TASK_ROOT) else path
        if relative.startswith("/"):
            named = [root for root in (self.root, *self.function_roots.values()) if root]
            if any(_inside(relative, root) for root in named):
                return None
            folder = os.path.dirname(relative)
            return (
                "an absolute path outside the task root and the source roots; to report it, "
                f"map it with --paths {folder}/=FOLDER"
            )
        root = self.function_roots.get(function or "", self.root) or "."
        if _inside(self.map(path, function), root):
            return None
        return f"it leaves {'its function' if function else 'the source'} folder {root!r}"

    def problems(self) -> list[str]:
        """One sentence per function whose source was not found, naming the fix.

        A name longer than any Lambda function's (64 characters) is cut short:
        names come from untrusted data files.
        """
        return [
            f"the source of function {clip(function, 80)!r} was not found: {reason}; "
            f"give its folder with --source-root {clip(function, 80)}=PATH"
            for function, reason in sorted(self.unresolved.items())
        ]


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it, links and ``..`` resolved."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip("/") + "/")


def _normalised(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


class _Tree:
    """The folders under a source root and whether a file exists below one of them."""

    def __init__(self, base: str, depth: int = SEARCH_DEPTH) -> None:
        self.base = base
        self.depth = depth
        self._folders: list[str] | None = None
        self._holding: dict[str, list[str]] = {}

    def folders(self) -> list[str]:
        """The root and its folders (paths as the root is written), breadth first."""
        if self._folders is None:
            self._folders = list(self._walk())
        return self._folders

    def holding(self, relative: str) -> list[str]:
        """The folders below which ``relative`` is a file (functions often share a name)."""
        if relative not in self._holding:
            self._holding[relative] = [f for f in self.folders() if self.exists(f, relative)]
        return self._holding[relative]

    def _walk(self) -> Iterator[str]:
        pending = deque([(self.base, 0)])
        seen = 0
        while pending and seen < MAX_FOLDERS:
            folder, depth = pending.popleft()
            seen += 1
            yield folder
            if depth == self.depth:
                continue
            try:
                with os.scandir(folder) as entries:
                    names = sorted(
                        e.name
                        for e in entries
                        if e.is_dir(follow_symlinks=False)
                        and not e.name.startswith(".")
                        and e.name not in SKIPPED_FOLDERS
                    )
            except OSError:
                continue
            pending.extend((f"{folder}/{name}", depth + 1) for name in names)

    def exists(self, folder: str, relative: str) -> bool:
        """Whether ``folder/relative`` is a file."""
        return os.path.isfile(f"{folder}/{relative}")


class _ZipTree(_Tree):
    """The folders inside a deployment zip (coverage.py reads source from inside one)."""

    def __init__(self, base: str, depth: int = SEARCH_DEPTH) -> None:
        super().__init__(base, depth)
        try:
            with zipfile.ZipFile(base) as bundle:
                self._names = frozenset(bundle.namelist())
        except (OSError, zipfile.BadZipFile):
            self._names = frozenset()

    def _walk(self) -> Iterator[str]:
        inner = {
            "/".join(parts[:depth])
            for name in self._names
            if (parts := name.split("/")[:-1])
            for depth in range(1, min(len(parts), self.depth) + 1)
        }
        yield self.base
        for folder in sorted(inner, key=lambda f: (f.count("/"), f)):
            yield f"{self.base}/{folder}"

    def exists(self, folder: str, relative: str) -> bool:
        """Whether ``relative`` is a member below ``folder`` of the zip."""
        inner = folder[len(self.base) :].strip("/")
        return (f"{inner}/{relative}" if inner else relative) in self._names


def _tree(base: str, depth: int) -> _Tree:
    if base.endswith(".zip") and os.path.isfile(base):
        return _ZipTree(base, depth)
    return _Tree(base, depth)


def _find_folder(tree: _Tree, function: str, files: list[str]) -> tuple[str | None, str]:
    """The folder under the tree's root that holds ``function``'s files, or None and why."""
    probe = files[:PROBE_FILES]
    candidates = [
        folder
        for folder in tree.holding(probe[0])
        if all(tree.exists(folder, p) for p in probe[1:])
    ]
    if not candidates:
        return None, f"no folder under {tree.base} holds {probe[0]}"
    name = _normalised(function)

    def score(folder: str) -> tuple[int, int]:
        own = _normalised(os.path.basename(folder.rstrip("/")))
        if not own or not name or own not in name:
            return (0, 0)
        return (2 if own == name else 1, len(own))

    best = max(score(folder) for folder in candidates)
    chosen = [folder for folder in candidates if score(folder) == best]
    if len(chosen) == 1:
        return chosen[0], ""
    shown = ", ".join(chosen[:5]) + (f" and {len(chosen) - 5} more" if len(chosen) > 5 else "")
    return None, f"{len(chosen)} folders under {tree.base} hold its files ({shown})"
