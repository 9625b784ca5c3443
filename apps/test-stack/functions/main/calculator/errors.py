"""What the calculator reports as a bad request rather than a crash."""

from __future__ import annotations


class BadRequest(Exception):
    """The event asks for something the calculator cannot do (answered with 400)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
