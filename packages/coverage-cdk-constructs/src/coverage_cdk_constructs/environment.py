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
FLUSH_POLICY: Final = "invocation"
DEFAULT_RAW_PREFIX: Final = "coverage/"
DEFAULT_COMBINED_PREFIX: Final = "coverage-combined/"
