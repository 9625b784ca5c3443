"""The combiner's errors: each names the problem and what fixes it."""

from __future__ import annotations


class CombinerError(Exception):
    """Base class of the combiner's errors."""


class SourceError(CombinerError):
    """A source cannot be read at all (no such folder, bucket, or access)."""


class MissingSourceError(CombinerError):
    """Reports need the measured source files, and some cannot be found."""

    def __init__(self, missing: list[str]) -> None:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        super().__init__(
            f"the source of {len(missing)} measured file(s) is not found: {shown}. "
            "Point --source-root at a checkout of the functions' code (the folder that was the "
            "task root), or --source-zip at the deployment zip, or map paths with --paths FROM=TO"
        )
        self.missing = missing
