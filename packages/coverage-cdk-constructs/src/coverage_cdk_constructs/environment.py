"""The wrapper's settings and entry point, as the constructs write them into functions.

These names are the wrapper's public contract (its README); they are
restated here because the constructs do not depend on the wrapper package.
"""

from __future__ import annotations

from typing import Final

ZERO_CODE_HANDLER: Final = "coverage_wrapper.handler.handler"
ENV_ENABLED: Final = "COVERAGE_ENABLED"
ENV_S3_BUCKET: Final = "COVERAGE_S3_BUCKET"
ENV_S3_PREFIX: Final = "COVERAGE_S3_PREFIX"
ENV_ORIGINAL_HANDLER: Final = "COVERAGE_ORIGINAL_HANDLER"
ENV_FLUSH_POLICY: Final = "COVERAGE_FLUSH_POLICY"
ENV_SAMPLE_RATE: Final = "COVERAGE_SAMPLE_RATE"
ENV_S3_KEY_TEMPLATE: Final = "COVERAGE_S3_KEY_TEMPLATE"
ENV_COMBINED_PREFIX: Final = "COVERAGE_COMBINED_PREFIX"
COMBINER_HANDLER: Final = "coverage_combiner.lambda_handler.handler"
FLUSH_POLICY: Final = "invocation"
DEFAULT_RAW_PREFIX: Final = "coverage/"
DEFAULT_COMBINED_PREFIX: Final = "coverage-combined/"
#: The wrapper's key layout, set explicitly on every function so that the
#: least-privilege grant below and the keys the function writes cannot drift apart.
KEY_TEMPLATE: Final = (
    "{prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{container}-{pid}-{seq}.coverage"
)


def function_keys_pattern(raw_prefix: str, function_name: str) -> str:
    """The IAM object pattern for one function's keys in :data:`KEY_TEMPLATE`.

    ``?`` matches exactly one character, so the date is exactly
    ``yyyy/mm/dd`` and the fourth segment is exactly the function's name: a
    function cannot write (or overwrite) keys in another function's folder.
    ``*`` would match ``/`` as well and allow that.
    """
    return f"{raw_prefix}????/??/??/{function_name}/*"
