"""The wrapper's settings and entry point, as the constructs write them into functions.

Names, defaults and the key layout come from the wrapper's public modules
(``coverage_wrapper.constants`` and ``coverage_wrapper.keys``), so the
environment the constructs set and the grant they write cannot drift from
what the wrapper reads and writes.
"""

from __future__ import annotations

from typing import Final

from coverage_wrapper.constants import (
    ENV_COMBINED_PREFIX,
    ENV_ENABLED,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
    ENV_SAMPLE_RATE,
    ZERO_CODE_HANDLER,
)
from coverage_wrapper.keys import (
    DATA_SUFFIX,
    DEFAULT_COMBINED_PREFIX,
    DEFAULT_KEY_TEMPLATE,
    DEFAULT_S3_PREFIX,
    KeyTemplate,
)

__all__ = [
    "COMBINER_HANDLER",
    "DATA_SUFFIX",
    "DEFAULT_COMBINED_PREFIX",
    "DEFAULT_RAW_PREFIX",
    "ENV_COMBINED_PREFIX",
    "ENV_ENABLED",
    "ENV_ORIGINAL_HANDLER",
    "ENV_S3_BUCKET",
    "ENV_S3_KEY_TEMPLATE",
    "ENV_S3_PREFIX",
    "ENV_SAMPLE_RATE",
    "KEY_TEMPLATE",
    "ZERO_CODE_HANDLER",
    "function_keys_pattern",
]

COMBINER_HANDLER: Final = "coverage_combiner.lambda_handler.handler"
DEFAULT_RAW_PREFIX: Final = DEFAULT_S3_PREFIX
#: The wrapper's key layout, set explicitly on every instrumented function and
#: on the combiner, so that the least-privilege grant below, the keys the
#: functions write and the keys the combiner reads cannot drift apart.
KEY_TEMPLATE: Final = DEFAULT_KEY_TEMPLATE


def function_keys_pattern(raw_prefix: str, function_name: str) -> str:
    """The IAM object pattern for one function's keys in :data:`KEY_TEMPLATE`.

    ``?`` matches exactly one character, so the date is exactly
    ``yyyy/mm/dd`` and the fourth segment is exactly the function's name: a
    function cannot write (or overwrite) keys in another function's folder.
    ``*`` would match ``/`` as well and allow that.
    """
    return KeyTemplate.parse_template(KEY_TEMPLATE).iam_object_pattern(raw_prefix, function_name)
