"""The wrapper's S3 key layout, parsed in one place.

``{prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{container}-{pid}-{seq}.coverage``.
Keys in another layout are still accepted as inputs; the data's own
``function@version`` contexts are the truth about what ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

DATA_SUFFIX = ".coverage"

_LAYOUT = re.compile(
    r"(?:^|/)(?P<yyyy>\d{4})/(?P<mm>\d{2})/(?P<dd>\d{2})/(?P<function>[^/]+)/(?P<version>[^/]+)/"
    r"(?P<container>[^/]+)-(?P<pid>\d+)-(?P<seq>\d+)\.coverage$"
)


@dataclass(frozen=True)
class DataKey:
    """What a key in the wrapper's layout says about its data file."""

    day: date
    function: str
    version: str
    container: str
    pid: int
    seq: int

    @property
    def writer(self) -> tuple[str, int]:
        """The process that wrote it: its snapshots are cumulative."""
        return (self.container, self.pid)


def parse_key(key: str) -> DataKey | None:
    """Parse ``key``; None when it is not in the wrapper's layout."""
    match = _LAYOUT.search(key)
    if match is None:
        return None
    try:
        day = date(int(match["yyyy"]), int(match["mm"]), int(match["dd"]))
    except ValueError:
        return None
    return DataKey(
        day=day,
        function=match["function"],
        version=match["version"],
        container=match["container"],
        pid=int(match["pid"]),
        seq=int(match["seq"]),
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def key_segment(value: str) -> str:
    """A function name or version as the wrapper writes it into a key (``$LATEST`` → ``LATEST``).

    This is the key layout's contract with the wrapper, restated here because
    the combiner does not depend on the wrapper package.
    """
    cleaned = _UNSAFE.sub("_", value.replace("$", ""))
    return cleaned.strip(".") or "_"


#: Why an object that is not a data file was left out.
NOT_DATA = f"not a data file (the name does not end in {DATA_SUFFIX})"


def is_health_probe(key: str) -> bool:
    """Whether ``key`` is one of the wrapper's S3 write probes (``{prefix}_health/*.probe``)."""
    return key.endswith(".probe") and "_health/" in key


def is_data_key(key: str) -> bool:
    """Whether ``key`` names a data file at all (anything else under a prefix is skipped)."""
    return key.endswith(DATA_SUFFIX)
