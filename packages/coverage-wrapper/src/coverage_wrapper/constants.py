"""Names and defaults of every setting the wrapper reads.

All environment variable names live here so that the documentation, the
configuration parser and the CDK constructs agree on one spelling. None of
them is one of coverage.py's own ``COVERAGE_*`` variables (``COVERAGE_FILE``,
``COVERAGE_RCFILE``, ``COVERAGE_CORE``, ``COVERAGE_DEBUG``,
``COVERAGE_PROCESS_START``, ...), which keep their coverage.py meaning.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from coverage_wrapper import keys

# Our settings.
ENV_ENABLED: Final = "COVERAGE_ENABLED"
ENV_S3_BUCKET: Final = "COVERAGE_S3_BUCKET"
ENV_S3_PREFIX: Final = "COVERAGE_S3_PREFIX"
ENV_UPLOAD_TIMEOUT: Final = "COVERAGE_UPLOAD_TIMEOUT"
ENV_INCLUDE_PATTERNS: Final = "COVERAGE_INCLUDE_PATTERNS"
ENV_EXCLUDE_PATTERNS: Final = "COVERAGE_EXCLUDE_PATTERNS"
ENV_BRANCH_COVERAGE: Final = "COVERAGE_BRANCH_COVERAGE"
ENV_LOG_LEVEL: Final = "COVERAGE_LOG_LEVEL"
ENV_ORIGINAL_HANDLER: Final = "COVERAGE_ORIGINAL_HANDLER"
ENV_S3_KEY_TEMPLATE: Final = "COVERAGE_S3_KEY_TEMPLATE"
ENV_RUN_ID: Final = "COVERAGE_RUN_ID"
ENV_RUN_ID_FIELD: Final = "COVERAGE_RUN_ID_FIELD"
ENV_FLUSH_POLICY: Final = "COVERAGE_FLUSH_POLICY"
ENV_FLUSH_INTERVAL: Final = "COVERAGE_FLUSH_INTERVAL"
ENV_SAMPLE_RATE: Final = "COVERAGE_SAMPLE_RATE"
ENV_SPOOL_DIR: Final = "COVERAGE_SPOOL_DIR"
ENV_SPOOL_MAX_FILES: Final = "COVERAGE_SPOOL_MAX_FILES"
ENV_HEALTH_PROBE: Final = "COVERAGE_HEALTH_PROBE"
ENV_CONFIG_FILE: Final = "COVERAGE_WRAPPER_CONFIG_FILE"
# Read by the combiner's Lambda function, beside ENV_S3_BUCKET and ENV_S3_PREFIX.
ENV_COMBINED_PREFIX: Final = "COVERAGE_COMBINED_PREFIX"

# Set by the Lambda runtime.
ENV_TASK_ROOT: Final = "LAMBDA_TASK_ROOT"
ENV_FUNCTION_NAME: Final = "AWS_LAMBDA_FUNCTION_NAME"
ENV_FUNCTION_VERSION: Final = "AWS_LAMBDA_FUNCTION_VERSION"
ENV_REGION: Final = "AWS_REGION"

# The key layout's defaults live with the layout; named here too so that the
# default of every setting can be found in one place.
DEFAULT_S3_PREFIX: Final = keys.DEFAULT_S3_PREFIX
DEFAULT_KEY_TEMPLATE: Final = keys.DEFAULT_KEY_TEMPLATE
DEFAULT_UPLOAD_TIMEOUT: Final = 30.0
#: The shortest ``COVERAGE_UPLOAD_TIMEOUT`` (seconds). Below it no upload can
#: be counted on to finish: the longest attempt that fits in less than a
#: second gets 0.25 s to connect and 0.25 s to read
#: (:data:`coverage_wrapper.uploader.ATTEMPT_CAPS`), where the uploader
#: otherwise allows at least 0.5 s and 1 s, and a process's first upload also
#: spends part of the budget importing boto3 and creating its client (about
#: three times coverage.py's import and start in CPU; far more on a small
#: function's share of a vCPU). ``0.0000001`` was accepted: nothing uploaded.
MIN_UPLOAD_TIMEOUT: Final = 1.0
#: The longest ``COVERAGE_UPLOAD_TIMEOUT`` (seconds): Lambda's longest
#: function timeout. No invocation has more time, so a larger value is most
#: likely milliseconds written as seconds.
MAX_UPLOAD_TIMEOUT: Final = 900.0
#: When a measured invocation writes a snapshot (:mod:`coverage_wrapper.flush_policy`).
FlushPolicy = Literal["adaptive", "invocation", "interval", "shutdown"]
DEFAULT_LOG_LEVEL: Final = "INFO"
#: The flush policy when ``COVERAGE_FLUSH_POLICY`` is not set and the layer's
#: extension does not run (the upload is then part of the invocation).
DEFAULT_FLUSH_POLICY: Final[FlushPolicy] = "invocation"
#: The flush policy when ``COVERAGE_FLUSH_POLICY`` is not set and the extension runs.
DEFAULT_FLUSH_POLICY_WITH_EXTENSION: Final[FlushPolicy] = "adaptive"
DEFAULT_FLUSH_INTERVAL: Final = 60.0
DEFAULT_SAMPLE_RATE: Final = 1.0
DEFAULT_SPOOL_DIR: Final = "/tmp/lambda-coverage"  # noqa: S108 - /tmp is Lambda's only writable place
DEFAULT_SPOOL_MAX_FILES: Final = 20
DEFAULT_TASK_ROOT: Final = "/var/task"

FLUSH_POLICIES: Final[tuple[FlushPolicy, ...]] = get_args(FlushPolicy)
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

LOGGER_NAME: Final = "coverage_wrapper"
#: The extension's executable in the layer (``extensions/lambda-coverage``), and
#: the name it registers under.
EXTENSION_NAME: Final = "lambda-coverage"
# The zero-code entry point, as it is written in a function's handler setting.
ZERO_CODE_HANDLER: Final = "coverage_wrapper.handler.handler"
