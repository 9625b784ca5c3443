"""The settings that instrument a function, as every instrumenter writes them.

The CDK constructs and the local runtime of the test stack both put a
function under the wrapper; they call these two functions so that a function
deployed with the constructs and one run locally get the same variables.
"""

from __future__ import annotations

from coverage_wrapper.constants import (
    DEFAULT_S3_PREFIX,
    ENV_ENABLED,
    ENV_ORIGINAL_HANDLER,
    ENV_S3_BUCKET,
    ENV_S3_KEY_TEMPLATE,
    ENV_S3_PREFIX,
    ENV_SAMPLE_RATE,
)
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE


def coverage_environment(
    *,
    bucket: str,
    prefix: str = DEFAULT_S3_PREFIX,
    key_template: str = DEFAULT_KEY_TEMPLATE,
    sample_rate: float = 1.0,
) -> dict[str, str]:
    """The variables every instrumented function gets, in either mode.

    The key template is set explicitly, so that the keys a function writes
    and the grant that lets it write them cannot drift apart. No flush policy
    is set: the wrapper's default applies (``adaptive`` with the layer's
    extension, ``invocation`` without).
    """
    return {
        ENV_ENABLED: "true",
        ENV_S3_BUCKET: bucket,
        ENV_S3_PREFIX: prefix,
        ENV_S3_KEY_TEMPLATE: key_template,
        ENV_SAMPLE_RATE: f"{sample_rate:g}",
    }


def zero_code_environment(original_handler: str) -> dict[str, str]:
    """What zero-code mode adds: the function's own handler, kept aside for the wrapper."""
    return {ENV_ORIGINAL_HANDLER: original_handler}
