"""What a data file is called and what it says about itself: its S3 key and metadata.

Also the key of this process's health probe, which lives beside its data.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from datetime import datetime, timezone

from coverage_wrapper.__about__ import __version__
from coverage_wrapper.config import WrapperConfig
from coverage_wrapper.identity import container_id
from coverage_wrapper.keys import KeyFields, KeyTemplate, key_segment


def object_key(config: WrapperConfig, seq: int, *, run_id: str | None) -> str:
    """The S3 key of this process's ``seq``-th data file, holding run ``run_id``."""
    fields = KeyFields(
        prefix=config.s3_prefix,
        when=datetime.now(timezone.utc),
        function=config.function_name,
        version=config.function_version,
        region=config.region,
        container=container_id(),
        pid=os.getpid(),
        seq=seq,
        run_id=run_id,
    )
    return KeyTemplate.parse_template(config.key_template).render(fields)


def probe_key(config: WrapperConfig) -> str:
    """The S3 key of this process's health probe: inside the function's own key folder."""
    return KeyTemplate.parse_template(config.key_template).probe_key(
        prefix=config.s3_prefix,
        when=datetime.now(timezone.utc),
        function=config.function_name,
        container=container_id(),
        pid=os.getpid(),
    )


def object_metadata(config: WrapperConfig, *, run_id: str | None) -> dict[str, str]:
    """The S3 object metadata of a data file of this process, holding run ``run_id``."""
    metadata = {
        "function": config.function_name,
        "function-version": config.function_version,
        "region": config.region,
        "container-id": container_id(),
        "wrapper-version": __version__,
        "coverage-version": coverage_version(),
        "python-version": platform.python_version(),
        "branch": "true" if config.branch else "false",
    }
    if run_id is not None:
        # As in the key: S3 metadata must be ASCII.
        metadata["run-id"] = key_segment(run_id)
    return metadata


@functools.cache
def coverage_version() -> str:
    """coverage.py's version, without importing coverage.py when it is not loaded."""
    module = sys.modules.get("coverage")
    found = getattr(module, "__version__", None)
    if isinstance(found, str):
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coverage")
    except PackageNotFoundError:
        return "not installed"
