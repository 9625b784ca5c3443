"""The key is the identity; the contexts inside a data file are the function's claim.

A function may write only under its own key folder (the IAM grant the
constructs give it: :meth:`coverage_wrapper.keys.KeyTemplate.iam_object_pattern`),
but anything inside the file it writes is its own say: a context
``other-function@7|invocation`` costs it nothing to write. So for every input
whose key (an S3 key, or a local path laid out the same way) parses with the
key template, the function, and the version when the template has
``{version}``, come from the key:

- a context naming that function and version (compared as keys hold them,
  through :func:`coverage_wrapper.keys.key_segment`: ``$LATEST`` is
  ``LATEST``) counts as it is;
- a context naming another function or version is *foreign*: it is not
  counted, and the input is named in a warning (the rest of it counts);
- a context naming no function at all (``""``, or another tool's label) is
  read as the key's identity, ``function@version`` from the key (``unknown``
  as the version when the template has no ``{version}``).

The function is the one whose folder holds the key
(:meth:`~coverage_wrapper.keys.KeyTemplate.owner`), since that is all its
grant guards: a key that spells another function's layout inside a
function's folder, or does not parse at all there, counts as the folder's
function's (any version). Inputs outside every function's folder keep their
contexts as they are: nothing says whose they are but themselves.

``--run-id R`` is decided here too, per input: a process's snapshots are
cumulative, so a run's lines can sit in a later snapshot under another run's
key. A context counts for ``R`` when it carries ``run=R``; a context without
a run (module init, data of a wrapper that did not label runs) counts when
the same file holds ``R``'s contexts or its key names ``R``.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from coverage_wrapper.attribution import parse_context
from coverage_wrapper.keys import NO_RUN_ID, key_segment

if TYPE_CHECKING:
    from coverage_combiner.reader import Contents
    from coverage_wrapper.keys import KeyTemplate, ParsedKey

#: The version given to a context that names no function, when the key names none either.
UNKNOWN_VERSION = "unknown"


class ClaimCheck(NamedTuple):
    """What of one input's data counts, decided from its key and the run asked for.

    ``function`` and ``version`` are the key's (as key segments; ``version``
    is None when the template has no ``{version}``); ``function`` is None for
    an input whose key does not parse. ``key_run`` is the run id the key
    names (None without one); ``run`` the run asked for (``--run-id``, as a
    key segment), None for every run.
    """

    function: str | None = None
    version: str | None = None
    key_run: str | None = None
    run: str | None = None

    @classmethod
    def of(
        cls, key: ParsedKey | None, run: str | None, owner: str | None = None
    ) -> ClaimCheck | None:
        """The check for an input with parsed ``key`` (None: not laid out); None: count all.

        ``owner`` is the function whose folder holds an input whose key does
        not parse (:func:`read_key`): its data counts as that function's.
        """
        if key is None:
            if owner is not None:
                return cls(function=owner, run=run)
            return None if run is None else cls(run=run)
        key_run = None if key.run_id in (None, NO_RUN_ID) else key.run_id
        return cls(key.function, key.version, key_run, run)

    def salt(self, digest: bytes) -> bytes:
        """``digest`` of an input's bytes, made distinct per check.

        The same bytes under two functions' keys are two functions' data, not
        one file seen twice.
        """
        return hashlib.sha256(digest + repr(tuple(self)).encode()).digest()

    def admit(self, contents: Contents) -> tuple[Contents, tuple[str, ...]]:
        """The rows that count, and the foreign claims (static contexts) left out, sorted."""
        contexts = {row[0] for row in contents.arcs} | {row[0] for row in contents.lines}
        foreign: set[str] = set()
        counted = {context: self._identity(context, foreign) for context in contexts}
        if self.run is not None:
            runs = {parse_context(c).run_id for c in counted.values() if c is not None}
            whole = self.run in runs or self.key_run == self.run
            for context, kept in counted.items():
                if kept is not None:
                    run = parse_context(kept).run_id
                    counted[context] = kept if run == self.run or (run is None and whole) else None
        if all(counted[context] == context for context in contexts):
            return contents, ()
        return replace(
            contents,
            arcs=[
                (c, path, g)
                for context, path, g in contents.arcs
                if (c := counted[context]) is not None
            ],
            lines=[
                (c, path, b)
                for context, path, b in contents.lines
                if (c := counted[context]) is not None
            ],
        ), tuple(sorted(foreign))

    def _identity(self, context: str, foreign: set[str]) -> str | None:
        """``context`` as counted under the key's identity; None (and noted) if foreign."""
        if self.function is None:
            return context
        attribution = parse_context(context)
        function, sep, version = attribution.static.rpartition("@")
        if not sep or not function:
            label = f"{self.function}@{_version_label(self.version)}"
            _, bar, dynamic = context.partition("|")
            return label + bar + dynamic
        if key_segment(function) == self.function and (
            self.version is None or key_segment(version) == self.version
        ):
            return context
        foreign.add(attribution.static)
        return None

    def describe(self, foreign: tuple[str, ...]) -> str:
        """Why an input's ``foreign`` claims were not counted, and what was."""
        shown = ", ".join(repr(label) for label in foreign[:5])
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        owner = f"{self.function}/{self.version}" if self.version else f"{self.function}"
        return (
            f"holds data labelled {shown}{more}, which its key ({owner}) does not name: "
            f"not counted; only {owner}'s data was merged from it (a function speaks only "
            "for itself: see 'Trust model' in the combiner's README)"
        )


def read_key(template: KeyTemplate, key: str) -> tuple[ParsedKey | None, str | None]:
    """``key`` as the template reads it, and the function whose folder holds it.

    A parse that names another function than the folder's owner is not
    taken (None): its fields (function, container, sequence number) were
    written by the owner, who could otherwise pass its file off as another
    function's newest snapshot and hide that function's real one.
    """
    parsed = template.parse(key)
    owner = template.owner(key)
    if parsed is not None and owner is not None and parsed.function != owner:
        parsed = None
    return parsed, owner


def _version_label(version: str | None) -> str:
    """The version a context gets from a key segment: keys write ``$LATEST`` as ``LATEST``."""
    if version is None:
        return UNKNOWN_VERSION
    return "$LATEST" if version == "LATEST" else version
