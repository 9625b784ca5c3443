"""The combiner's errors: each names the problem and what fixes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage_combiner.combine import CombineResult


class CombinerError(Exception):
    """Base class of the combiner's errors."""


class SourceError(CombinerError):
    """A source cannot be read at all (no such folder, bucket, or access)."""


#: How many missing files and functions a message names; the rest are counted.
SHOWN_FILES = 3
SHOWN_FUNCTIONS = 3
#: The longest a file name, or a sentence about one function, may be in a
#: message: both come from untrusted data files.
SHOWN_CHARS = 120
SHOWN_SENTENCE = 300


class MissingSourceError(CombinerError):
    """Reports need the measured source files, and some cannot be found.

    The message stays short whatever the data holds: it names a few files and
    functions and counts the rest. :attr:`missing` and :attr:`functions` hold
    them all.
    """

    def __init__(self, missing: list[str], functions: list[str] | None = None) -> None:
        #: One sentence per function whose code folder was not found.
        self.functions = list(functions or [])
        self.missing = missing
        shown = _some([clip(name) for name in missing], SHOWN_FILES, "more")
        why = "".join(
            f" ({clip(problem, SHOWN_SENTENCE)})" for problem in self.functions[:SHOWN_FUNCTIONS]
        )
        if len(self.functions) > SHOWN_FUNCTIONS:
            why += (
                f" (and {len(self.functions) - SHOWN_FUNCTIONS} more functions whose folder was "
                'not found: the JSON summary\'s "sources" names the folder each was looked for in)'
            )
        super().__init__(
            f"the source of {len(missing)} measured file(s) is not found: {shown}{why}. "
            "Point --source-root at a checkout of the functions' code (the folder that was the "
            "task root, or a folder holding one folder per function; --source-root FUNCTION=PATH "
            "for one function), or --source-zip at the deployment zip, or map paths with "
            "--paths FROM=TO"
        )


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so: names from data can be any length."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _some(names: list[str], shown: int, rest: str) -> str:
    return ", ".join(names[:shown]) + (
        f" and {len(names) - shown} {rest}" if len(names) > shown else ""
    )


class NoDataError(CombinerError):
    """Nothing to report: no data file was found (or merged) under the sources and filters.

    ``result`` holds what was found all the same (rejected inputs, other objects),
    so a caller can still say why.
    """

    def __init__(self, message: str, result: CombineResult | None = None) -> None:
        super().__init__(message)
        self.result = result
