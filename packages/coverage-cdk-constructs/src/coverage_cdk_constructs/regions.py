"""The regions the layer is published to: named lists, kept here and nowhere else.

``--regions`` takes either a comma-separated list (``us-east-1,eu-west-1``)
or the name of a list below (``commercial``). A new AWS region is added to
:data:`COMMERCIAL_REGIONS` once Lambda layers are available there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: The commercial regions enabled in every account. Opt-in regions are listed
#: separately: publishing there fails until the account enables them.
COMMERCIAL_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)

#: Commercial regions that an account must enable before it can publish there.
OPT_IN_REGIONS: Final = (
    "af-south-1",
    "ap-east-1",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
)

#: The named lists ``--regions`` accepts.
REGION_LISTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "commercial": COMMERCIAL_REGIONS,
        "opt-in": OPT_IN_REGIONS,
        "all-commercial": COMMERCIAL_REGIONS + OPT_IN_REGIONS,
    }
)

_REGION_NAME: Final = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def parse_regions(text: str) -> tuple[str, ...]:
    """The regions ``text`` names: a named list or ``r1,r2,...``; in order, without repeats.

    Raises ``ValueError`` naming the bad entry and the lists there are.
    """
    name = text.strip()
    if name in REGION_LISTS:
        return REGION_LISTS[name]
    regions: list[str] = []
    for entry in (part.strip() for part in name.split(",")):
        if not entry:
            continue
        if not _REGION_NAME.match(entry):
            raise ValueError(
                f"--regions: {entry!r} is not a region name (like eu-west-1); give regions "
                f"separated by commas or one of the lists: {', '.join(REGION_LISTS)}"
            )
        if entry not in regions:
            regions.append(entry)
    if not regions:
        raise ValueError(
            f"--regions {text!r} names no region; give r1,r2,... or one of: "
            f"{', '.join(REGION_LISTS)}"
        )
    return tuple(regions)
