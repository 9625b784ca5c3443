"""The combiner's errors: each names the problem and what fixes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage_combiner.combine import CombineResult


class CombinerError(Exception):
    """Base class of the combiner's errors."""


class SourceError(CombinerError):
    """A source cannot be read at all (no such folder, bucket, or access)."""


class MissingSourceError(CombinerError):
    """Reports need the measured source files, and some cannot be found."""

    def __init__(self, missing: list[str], functions: list[str] | None = None) -> None:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        #: One sentence per function whose code folder was not found.
        self.functions = list(functions or [])
        why = "".join(f" ({problem})" for problem in self.functions)
        super().__init__(
            f"the source of {len(missing)} measured file(s) is not found: {shown}{why}. "
            "Point --source-root at a checkout of the functions' code (the folder that was the "
            "task root, or a folder holding one folder per function), or --source-zip at the "
            "deployment zip, or map paths with --paths FROM=TO"
        )
        self.missing = missing


class NoDataError(CombinerError):
    """Nothing to report: no data file was found (or merged) under the sources and filters.

    ``result`` holds what was found all the same (rejected inputs, other objects),
    so a caller can still say why.
    """

    def __init__(self, message: str, result: CombineResult | None = None) -> None:
        super().__init__(message)
        self.result = result
