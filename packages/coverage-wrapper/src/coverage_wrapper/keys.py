"""S3 object keys and metadata for uploaded data files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def key_segment(value: str) -> str:
    """Make ``value`` safe as one path segment of a key (``$LATEST`` becomes ``LATEST``)."""
    cleaned = _UNSAFE.sub("_", value.replace("$", ""))
    return cleaned.strip(".") or "_"


@dataclass(frozen=True)
class KeyFields:
    """The values a key template can use."""

    prefix: str
    when: datetime
    function: str
    version: str
    region: str
    container: str
    pid: int
    seq: int

    def render(self, template: str) -> str:
        """Fill ``template`` (validated by the configuration) with these values."""
        key = template.format(
            prefix=self.prefix,
            yyyy=f"{self.when.year:04d}",
            mm=f"{self.when.month:02d}",
            dd=f"{self.when.day:02d}",
            hh=f"{self.when.hour:02d}",
            function=key_segment(self.function),
            version=key_segment(self.version),
            region=key_segment(self.region),
            container=key_segment(self.container),
            pid=self.pid,
            seq=f"{self.seq:06d}",
        )
        return key.lstrip("/")
