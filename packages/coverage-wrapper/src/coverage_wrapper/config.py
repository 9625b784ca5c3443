"""One frozen settings object, parsed once from explicit options and the environment.

Each setting resolves as: explicit option (decorator keyword) → environment
variable → default. A bad value never raises: it becomes one entry in
``WrapperConfig.problems`` (logged once and shown by the health check), and the
default is used instead, so the function keeps running.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from coverage_wrapper import constants as c
from coverage_wrapper.keys import KeyTemplate, KeyTemplateError, normalize_prefix

if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: Keyword options accepted by ``@coverage_handler(...)`` and ``CoverageContext(...)``.
OPTION_NAMES = frozenset(
    {
        "enabled",
        "s3_bucket",
        "s3_prefix",
        "upload_timeout",
        "include",
        "exclude",
        "branch",
        "sample_rate",
        "key_template",
    }
)


class WrapperConfig(NamedTuple):
    """The wrapper's settings for this process, already validated and immutable.

    A named tuple rather than a dataclass: it is created at cold start, and
    a dataclass with this many fields costs several milliseconds to define.
    """

    enabled: bool = True
    s3_bucket: str | None = None
    s3_prefix: str = c.DEFAULT_S3_PREFIX
    upload_timeout: float = c.DEFAULT_UPLOAD_TIMEOUT
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    branch: bool = True
    log_level: str = c.DEFAULT_LOG_LEVEL
    original_handler: str | None = None
    key_template: str = c.DEFAULT_KEY_TEMPLATE
    run_id: str | None = None
    #: Where an invocation's own run id is in its event (``headers.x-test-run``),
    #: as the steps of the dotted path; it wins over ``run_id`` when present.
    run_id_field: tuple[str, ...] | None = None
    #: None: ``adaptive`` while the layer's extension runs, ``invocation`` otherwise.
    flush_policy: c.FlushPolicy | None = None
    flush_interval: float = c.DEFAULT_FLUSH_INTERVAL
    sample_rate: float = c.DEFAULT_SAMPLE_RATE
    spool_dir: str = c.DEFAULT_SPOOL_DIR
    spool_max_files: int = c.DEFAULT_SPOOL_MAX_FILES
    health_probe: bool = False
    coverage_config_file: str | None = None
    task_root: str = c.DEFAULT_TASK_ROOT
    function_name: str = "unknown-function"
    function_version: str = "$LATEST"
    region: str = "unknown-region"
    problems: tuple[str, ...] = ()

    def with_options(self, options: Mapping[str, Any]) -> WrapperConfig:
        """Return a copy where explicit keyword options win over this configuration."""
        if not options:
            return self
        problems = list(self.problems)
        parsed = _Parser({}, options, problems)
        changes: dict[str, Any] = {}
        if "enabled" in options:
            changes["enabled"] = parsed.flag("enabled", "", default=self.enabled)
        if "s3_bucket" in options:
            changes["s3_bucket"] = parsed.text("s3_bucket", "") or None
        if "s3_prefix" in options:
            changes["s3_prefix"] = parsed.prefix("s3_prefix", "")
        if "upload_timeout" in options:
            changes["upload_timeout"] = parsed.upload_timeout("upload_timeout", "")
        if "include" in options:
            changes["include"] = parsed.patterns("include", "")
        if "exclude" in options:
            changes["exclude"] = parsed.patterns("exclude", "")
        if "branch" in options:
            changes["branch"] = parsed.flag("branch", "", default=self.branch)
        if "sample_rate" in options:
            changes["sample_rate"] = parsed.rate("sample_rate", "")
        if "key_template" in options:
            changes["key_template"] = parsed.key_template("key_template", "")
        return self._replace(problems=tuple(problems), **changes)


def load_config(environ: Mapping[str, str] | None = None) -> WrapperConfig:
    """Parse the wrapper's settings from ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    p = _Parser(env, {}, problems)
    task_root = env.get(c.ENV_TASK_ROOT) or c.DEFAULT_TASK_ROOT
    config = WrapperConfig(
        enabled=p.flag("enabled", c.ENV_ENABLED, default=True),
        s3_bucket=p.text("s3_bucket", c.ENV_S3_BUCKET) or None,
        s3_prefix=p.prefix("s3_prefix", c.ENV_S3_PREFIX),
        upload_timeout=p.upload_timeout("upload_timeout", c.ENV_UPLOAD_TIMEOUT),
        include=p.patterns("include", c.ENV_INCLUDE_PATTERNS),
        exclude=p.patterns("exclude", c.ENV_EXCLUDE_PATTERNS),
        branch=p.flag("branch", c.ENV_BRANCH_COVERAGE, default=True),
        log_level=p.choice("log_level", c.ENV_LOG_LEVEL, c.LOG_LEVELS, c.DEFAULT_LOG_LEVEL)
        or c.DEFAULT_LOG_LEVEL,
        original_handler=p.text("original_handler", c.ENV_ORIGINAL_HANDLER) or None,
        key_template=p.key_template("key_template", c.ENV_S3_KEY_TEMPLATE),
        run_id=p.text("run_id", c.ENV_RUN_ID) or None,
        run_id_field=p.field_path("run_id_field", c.ENV_RUN_ID_FIELD),
        # choice() returns one of FLUSH_POLICIES or None, nothing else.
        flush_policy=cast(
            "c.FlushPolicy | None",
            p.choice(
                "flush_policy",
                c.ENV_FLUSH_POLICY,
                c.FLUSH_POLICIES,
                None,
                shown_default=(
                    "the default (adaptive with the layer's extension, invocation without)"
                ),
            ),
        ),
        flush_interval=p.seconds(
            "flush_interval", c.ENV_FLUSH_INTERVAL, default=c.DEFAULT_FLUSH_INTERVAL
        ),
        sample_rate=p.rate("sample_rate", c.ENV_SAMPLE_RATE),
        spool_dir=p.text("spool_dir", c.ENV_SPOOL_DIR) or c.DEFAULT_SPOOL_DIR,
        spool_max_files=p.count("spool_max_files", c.ENV_SPOOL_MAX_FILES),
        health_probe=p.flag("health_probe", c.ENV_HEALTH_PROBE, default=False),
        coverage_config_file=p.text("coverage_config_file", c.ENV_CONFIG_FILE) or None,
        task_root=task_root.rstrip("/") or "/",
        function_name=env.get(c.ENV_FUNCTION_NAME) or "unknown-function",
        function_version=env.get(c.ENV_FUNCTION_VERSION) or "$LATEST",
        region=env.get(c.ENV_REGION) or "unknown-region",
        problems=(),
    )
    return config._replace(problems=tuple(problems))


@functools.cache
def environment_config() -> WrapperConfig:
    """The configuration from ``os.environ``, parsed once per process."""
    return load_config()


class _Parser:
    """Reads one raw value per setting and records a readable problem for bad ones."""

    def __init__(
        self, env: Mapping[str, str], options: Mapping[str, Any], problems: list[str]
    ) -> None:
        self._env = env
        self._options = options
        self._problems = problems

    def _raw(self, option: str, variable: str) -> tuple[str, Any] | None:
        """The explicit option if given, else the environment value, with its display name."""
        if option in self._options:
            return option, self._options[option]
        if variable and variable in self._env:
            return variable, self._env[variable]
        return None

    def _convert(
        self,
        option: str,
        variable: str,
        convert: Callable[[Any], T],
        default: T,
        expected: str,
        *,
        shown_default: str | None = None,
    ) -> T:
        raw = self._raw(option, variable)
        if raw is None:
            return default
        name, value = raw
        try:
            return convert(value)
        except (TypeError, ValueError):
            shown = shown_default or repr(default)
            self._problems.append(f"{name}={value!r} is not {expected}; using {shown}")
            return default

    def text(self, option: str, variable: str) -> str:
        raw = self._raw(option, variable)
        if raw is None or raw[1] is None:
            return ""
        return str(raw[1]).strip()

    def flag(self, option: str, variable: str, *, default: bool) -> bool:
        def convert(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(text)

        return self._convert(option, variable, convert, default, "true or false")

    def seconds(self, option: str, variable: str, *, default: float) -> float:
        def convert(value: Any) -> float:
            seconds = float(value)
            if not math.isfinite(seconds) or seconds <= 0:
                raise ValueError(value)
            return seconds

        return self._convert(option, variable, convert, default, "a positive number of seconds")

    def upload_timeout(self, option: str, variable: str) -> float:
        """Seconds for one flush's uploads, within the range where an upload can finish."""
        low, high = c.MIN_UPLOAD_TIMEOUT, c.MAX_UPLOAD_TIMEOUT

        def convert(value: Any) -> float:
            if isinstance(value, bool):
                raise TypeError(value)
            seconds = float(value)
            if not low <= seconds <= high:  # NaN is in no range
                raise ValueError(value)
            return seconds

        expected = (
            f"a number of seconds from {low:g} to {high:g} (below {low:g} s no upload can "
            f"finish; {high:g} s is Lambda's longest timeout)"
        )
        return self._convert(option, variable, convert, c.DEFAULT_UPLOAD_TIMEOUT, expected)

    def rate(self, option: str, variable: str) -> float:
        def convert(value: Any) -> float:
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(value)
            return rate

        return self._convert(
            option, variable, convert, c.DEFAULT_SAMPLE_RATE, "a fraction between 0 and 1"
        )

    def count(self, option: str, variable: str) -> int:
        def convert(value: Any) -> int:
            number = int(str(value).strip())
            if number < 1:
                raise ValueError(value)
            return number

        return self._convert(
            option, variable, convert, c.DEFAULT_SPOOL_MAX_FILES, "a whole number of at least 1"
        )

    def choice(
        self,
        option: str,
        variable: str,
        choices: Sequence[str],
        default: str | None,
        *,
        shown_default: str | None = None,
    ) -> str | None:
        def convert(value: Any) -> str | None:
            text = str(value).strip().upper() if choices == c.LOG_LEVELS else str(value).strip()
            if text not in choices:
                raise ValueError(value)
            return text

        expected = f"one of {', '.join(choices)}"
        return self._convert(
            option, variable, convert, default, expected, shown_default=shown_default
        )

    def field_path(self, option: str, variable: str) -> tuple[str, ...] | None:
        if not self.text(option, variable):
            return None
        return self._convert(
            option,
            variable,
            _field_path,
            None,
            "a dotted path into the event such as 'headers.x-test-run'",
            shown_default="no run id from the event",
        )

    def prefix(self, option: str, variable: str) -> str:
        raw = self._raw(option, variable)
        if raw is None:
            return c.DEFAULT_S3_PREFIX
        name, value = raw
        try:
            return normalize_prefix(str(value))
        except ValueError:
            self._problems.append(f"{name}={value!r} contains '..'; using {c.DEFAULT_S3_PREFIX!r}")
            return c.DEFAULT_S3_PREFIX

    def patterns(self, option: str, variable: str) -> tuple[str, ...]:
        raw = self._raw(option, variable)
        if raw is None or raw[1] is None:
            return ()
        value = raw[1]
        items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
        return tuple(item.strip() for item in items if item.strip())

    def key_template(self, option: str, variable: str) -> str:
        raw = self._raw(option, variable)
        if raw is None:
            return c.DEFAULT_KEY_TEMPLATE
        name, value = raw
        template = str(value).strip()
        try:
            KeyTemplate.parse_template(template)
        except KeyTemplateError as exc:
            self._problems.append(
                f"{name}={value!r} is not a key template: {exc.reason}; "
                f"using {c.DEFAULT_KEY_TEMPLATE!r}"
            )
            return c.DEFAULT_KEY_TEMPLATE
        return template


def _field_path(value: Any) -> tuple[str, ...]:
    """The steps of a dotted path into the event; ValueError when one is empty."""
    steps = tuple(step.strip() for step in str(value).strip().split("."))
    if not all(steps):
        raise ValueError(value)
    return steps
