"""Configuration: parsed once, explicit options first, bad values never break the function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler, health_check_handler
from coverage_wrapper.config import WrapperConfig, load_config
from coverage_wrapper.constants import DEFAULT_KEY_TEMPLATE
from tests.wrapper.conftest import lambda_context, uploads, write_module
from tests.wrapper.sample_functions import ORDERS

#: What a bad upload timeout is told (the range, why, and the default used).
NOT_A_TIMEOUT = (
    "is not a number of seconds from 1 to 900 (below 1 s no upload can finish; 900 s is "
    "Lambda's longest timeout); using 30.0"
)


def test_defaults() -> None:
    config = load_config({})
    assert config == WrapperConfig()
    assert config.s3_prefix == "coverage/"
    assert config.upload_timeout == 30.0
    assert config.branch is True
    assert config.log_level == "INFO"
    assert config.key_template == DEFAULT_KEY_TEMPLATE
    assert config.problems == ()


def test_every_documented_variable_is_read() -> None:
    config = load_config(
        {
            "COVERAGE_ENABLED": "no",
            "COVERAGE_S3_BUCKET": " my-bucket ",
            "COVERAGE_S3_PREFIX": "/raw",
            "COVERAGE_UPLOAD_TIMEOUT": "2.5",
            "COVERAGE_INCLUDE_PATTERNS": "src/*, lib/*.py,",
            "COVERAGE_EXCLUDE_PATTERNS": "src/generated/*",
            "COVERAGE_BRANCH_COVERAGE": "FALSE",
            "COVERAGE_LOG_LEVEL": "debug",
            "COVERAGE_ORIGINAL_HANDLER": "app.handler",
            "COVERAGE_S3_KEY_TEMPLATE": " {prefix}{function}/{container}-{pid}-{seq}.coverage ",
            "COVERAGE_RUN_ID": " nightly-42 ",
            "COVERAGE_RUN_ID_FIELD": " headers.x-test-run ",
            "COVERAGE_FLUSH_POLICY": "interval",
            "COVERAGE_FLUSH_INTERVAL": "15",
            "COVERAGE_SAMPLE_RATE": "0.25",
            "COVERAGE_SPOOL_DIR": "/tmp/elsewhere",
            "COVERAGE_SPOOL_MAX_FILES": "5",
            "COVERAGE_HEALTH_PROBE": "1",
            "LAMBDA_TASK_ROOT": "/var/task/",
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "3",
            "AWS_REGION": "ap-south-1",
        }
    )
    assert config == WrapperConfig(
        enabled=False,
        s3_bucket="my-bucket",
        s3_prefix="raw/",
        upload_timeout=2.5,
        include=("src/*", "lib/*.py"),
        exclude=("src/generated/*",),
        branch=False,
        log_level="DEBUG",
        original_handler="app.handler",
        key_template="{prefix}{function}/{container}-{pid}-{seq}.coverage",
        run_id="nightly-42",
        run_id_field=("headers", "x-test-run"),
        flush_policy="interval",
        flush_interval=15.0,
        sample_rate=0.25,
        spool_dir="/tmp/elsewhere",
        spool_max_files=5,
        health_probe=True,
        task_root="/var/task",
        function_name="fn",
        function_version="3",
        region="ap-south-1",
    )


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        *(
            ("COVERAGE_UPLOAD_TIMEOUT", value, f"COVERAGE_UPLOAD_TIMEOUT={value!r} {NOT_A_TIMEOUT}")
            # 30000: milliseconds written as seconds.
            for value in ("abc", "-1", "0", "0.0000001", "0.999", "900.5", "30000", "inf", "nan")
        ),
        (
            "COVERAGE_BRANCH_COVERAGE",
            "sometimes",
            "COVERAGE_BRANCH_COVERAGE='sometimes' is not true or false; using True",
        ),
        ("COVERAGE_ENABLED", "maybe", "COVERAGE_ENABLED='maybe' is not true or false; using True"),
        (
            "COVERAGE_LOG_LEVEL",
            "LOUD",
            "COVERAGE_LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR; using 'INFO'",
        ),
        (
            "COVERAGE_SAMPLE_RATE",
            "2",
            "COVERAGE_SAMPLE_RATE='2' is not a fraction between 0 and 1; using 1.0",
        ),
        (
            "COVERAGE_FLUSH_POLICY",
            "hourly",
            "COVERAGE_FLUSH_POLICY='hourly' is not one of adaptive, invocation, interval, "
            "shutdown; using the default (adaptive with the layer's extension, invocation without)",
        ),
        (
            "COVERAGE_FLUSH_INTERVAL",
            "0",
            "COVERAGE_FLUSH_INTERVAL='0' is not a positive number of seconds; using 60.0",
        ),
        (
            "COVERAGE_RUN_ID_FIELD",
            "headers..x-test-run",
            "COVERAGE_RUN_ID_FIELD='headers..x-test-run' is not a dotted path into the event "
            "such as 'headers.x-test-run'; using no run id from the event",
        ),
        (
            "COVERAGE_SPOOL_MAX_FILES",
            "0",
            "COVERAGE_SPOOL_MAX_FILES='0' is not a whole number of at least 1; using 20",
        ),
        (
            "COVERAGE_S3_PREFIX",
            "a/../b",
            "COVERAGE_S3_PREFIX='a/../b' contains '..'; using 'coverage/'",
        ),
        (
            "COVERAGE_S3_KEY_TEMPLATE",
            "{prefix}{user}",
            "COVERAGE_S3_KEY_TEMPLATE='{prefix}{user}' is not a key template: {user} is not a "
            "field; the fields are {prefix} {yyyy} {mm} {dd} {hh} {function} {version} {region} "
            "{run_id} {container} {pid} {seq}; using '{prefix}{yyyy}/{mm}/{dd}/{function}/"
            "{version}/{container}-{pid}-{seq}.coverage'",
        ),
        (
            "COVERAGE_S3_KEY_TEMPLATE",
            "{prefix}{function}.coverage",
            "COVERAGE_S3_KEY_TEMPLATE='{prefix}{function}.coverage' is not a key template: it "
            "lacks {container} {pid} {seq}",
        ),
        (
            "COVERAGE_S3_KEY_TEMPLATE",
            "{prefix}{region}/{function}/{container}-{pid}-{seq}.coverage",
            "COVERAGE_S3_KEY_TEMPLATE='{prefix}{region}/{function}/{container}-{pid}-{seq}"
            ".coverage' is not a key template: {region} before {function}",
        ),
    ],
)
def test_a_bad_value_is_one_clear_problem_and_the_default(
    variable: str, value: str, problem: str
) -> None:
    config = load_config({variable: value})
    assert len(config.problems) == 1
    assert config.problems[0].startswith(problem)
    defaults = WrapperConfig()
    field = {
        "COVERAGE_UPLOAD_TIMEOUT": "upload_timeout",
        "COVERAGE_BRANCH_COVERAGE": "branch",
        "COVERAGE_ENABLED": "enabled",
        "COVERAGE_LOG_LEVEL": "log_level",
        "COVERAGE_SAMPLE_RATE": "sample_rate",
        "COVERAGE_FLUSH_POLICY": "flush_policy",
        "COVERAGE_FLUSH_INTERVAL": "flush_interval",
        "COVERAGE_RUN_ID_FIELD": "run_id_field",
        "COVERAGE_SPOOL_MAX_FILES": "spool_max_files",
        "COVERAGE_S3_PREFIX": "s3_prefix",
        "COVERAGE_S3_KEY_TEMPLATE": "key_template",
    }[variable]
    assert getattr(config, field) == getattr(defaults, field)


def test_bad_values_leave_the_function_running_logged_once_and_in_health(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "soon")
    monkeypatch.setenv("COVERAGE_SAMPLE_RATE", "all")
    write_module(task_root, "orders.py", ORDERS)
    import orders  # type: ignore[import-not-found]

    handler = coverage_handler(orders.handler)
    for n in range(3):
        assert handler({"prices": [n]}, lambda_context())["total"] == n
    # The same path three times: one snapshot (nothing new after the first).
    assert len(uploads(s3, bucket, tmp_path)) == 1

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    problems = [line["message"] for line in logged if line.get("problem") == "configuration"]
    assert problems == [
        f"COVERAGE_UPLOAD_TIMEOUT='soon' {NOT_A_TIMEOUT}",
        "COVERAGE_SAMPLE_RATE='all' is not a fraction between 0 and 1; using 1.0",
    ]
    health = health_check_handler()
    assert health["status"] == "degraded"
    assert health["problems"] == problems


def test_options_are_validated_like_the_environment() -> None:
    config = WrapperConfig().with_options({"upload_timeout": "x", "include": ["a/*", " "]})
    assert config.upload_timeout == 30.0
    assert config.include == ("a/*",)
    assert config.problems == (f"upload_timeout='x' {NOT_A_TIMEOUT}",)


@pytest.mark.parametrize("seconds", [1, "1", 1.0, 2.5, "900", 900.0])
def test_an_upload_timeout_in_its_range_is_taken(seconds: float | str) -> None:
    from_env = load_config({"COVERAGE_UPLOAD_TIMEOUT": str(seconds)})
    from_option = WrapperConfig().with_options({"upload_timeout": seconds})
    for config in (from_env, from_option):
        assert (config.upload_timeout, config.problems) == (float(seconds), ())


@pytest.mark.parametrize("seconds", [0.0000001, 0.5, 901, True, float("nan"), None])
def test_an_explicit_upload_timeout_is_validated_as_the_variable_is(seconds: Any) -> None:
    config = load_config({"COVERAGE_UPLOAD_TIMEOUT": "2"}).with_options({"upload_timeout": seconds})
    assert config.upload_timeout == 30.0
    assert config.problems == (f"upload_timeout={seconds!r} {NOT_A_TIMEOUT}",)


@pytest.mark.parametrize("where", ["environment", "decorator"])
def test_a_timeout_no_upload_fits_in_still_uploads_and_says_so(
    where: str,
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``0.0000001`` was taken: nothing uploaded, and the health check said healthy."""
    options: dict[str, Any] = {}
    if where == "environment":
        monkeypatch.setenv("COVERAGE_UPLOAD_TIMEOUT", "0.0000001")
        name = "COVERAGE_UPLOAD_TIMEOUT='0.0000001'"
    else:
        options["upload_timeout"] = 0.0000001
        name = "upload_timeout=1e-07"
    write_module(task_root, "orders.py", ORDERS)
    import orders

    handler = coverage_handler(**options)(orders.handler)
    assert handler({"prices": [4]}, lambda_context())["total"] == 4

    (upload,) = uploads(s3, bucket, tmp_path)
    assert upload.key.endswith("-000001.coverage")
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    problems = [line["message"] for line in logged if line.get("problem") == "configuration"]
    assert problems == [f"{name} {NOT_A_TIMEOUT}"]
    health = health_check_handler()
    assert health["status"] == "degraded"
    assert health["problems"] == problems
    assert health["configuration"]["upload_timeout"] == 30.0
    assert health["last_flush"]["outcome"] == "uploaded"
