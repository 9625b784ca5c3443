"""What importing costs, and ``COVERAGE_ENABLED=false`` as a pure pass-through.

These run in a fresh interpreter: ``sys.modules`` of the test process already
holds boto3 and coverage.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.wrapper.sample_functions import ORDERS


def run_python(code: str, *, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    last: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


@pytest.fixture
def function_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "orders.py").write_text(ORDERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_"))}
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path[1:]]),
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "COVERAGE_SPOOL_DIR": str(tmp_path / "spool"),
            # Unreachable on purpose: nothing may try it.
            "COVERAGE_S3_BUCKET": "bucket-that-must-not-be-contacted",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        }
    )
    return env


def test_importing_the_package_imports_neither_coverage_nor_boto3(
    tmp_path: Path, function_env: dict[str, str]
) -> None:
    seen = run_python(
        """
        import json, sys
        import coverage_wrapper
        from coverage_wrapper import coverage_handler, CoverageContext, health_check_handler
        print(json.dumps({"coverage": "coverage" in sys.modules, "boto3": "boto3" in sys.modules,
                          "botocore": "botocore" in sys.modules}))
        """,
        cwd=tmp_path,
        env=function_env,
    )
    assert seen == {"coverage": False, "boto3": False, "botocore": False}


def test_measuring_without_a_flush_to_s3_does_not_import_boto3(
    tmp_path: Path, function_env: dict[str, str]
) -> None:
    del function_env["COVERAGE_S3_BUCKET"]
    seen = run_python(
        """
        import json, sys
        from coverage_wrapper import coverage_handler
        import orders
        coverage_handler(orders.handler)({"prices": [1]}, None)
        print(json.dumps({"coverage": "coverage" in sys.modules, "boto3": "boto3" in sys.modules}))
        """,
        cwd=tmp_path,
        env=function_env,
    )
    assert seen == {"coverage": True, "boto3": False}


@pytest.mark.parametrize("mode", ["decorator", "context", "zero_code"])
def test_disabled_is_a_pure_pass_through(
    tmp_path: Path, function_env: dict[str, str], mode: str
) -> None:
    function_env["COVERAGE_ENABLED"] = "false"
    function_env["COVERAGE_ORIGINAL_HANDLER"] = "orders.handler"
    seen = run_python(
        f"""
        import json, sys, os
        mode = {mode!r}
        import orders
        if mode == "decorator":
            from coverage_wrapper import coverage_handler
            result = coverage_handler(orders.handler)({{"prices": [5]}}, None)
        elif mode == "context":
            from coverage_wrapper import CoverageContext
            with CoverageContext():
                result = orders.handler({{"prices": [5]}}, None)
        else:
            from coverage_wrapper.handler import handler
            result = handler({{"prices": [5]}}, None)
            # Disabled, the zero-code entry point is the original function itself.
            assert handler is orders.handler
        loaded = sorted(m for m in sys.modules if m.startswith("coverage_wrapper."))
        from coverage_wrapper.session import current_session
        print(json.dumps({{
            "machinery": [m for m in loaded if m.rsplit(".", 1)[1] in
                          ("session", "measurement", "spool", "uploader", "logs")],
            "result": result,
            "coverage": "coverage" in sys.modules,
            "boto3": "boto3" in sys.modules,
            "session": current_session() is not None,
            "trace": sys.gettrace() is not None,
            "spool": os.path.exists(os.environ["COVERAGE_SPOOL_DIR"]),
        }}))
        """,
        cwd=tmp_path,
        env=function_env,
    )
    assert seen == {
        "machinery": [],
        "result": {"total": 5, "body": '{"prices": [5]}'},
        "coverage": False,
        "boto3": False,
        "session": False,
        "trace": False,
        "spool": False,
    }


def test_combine_coverage_files_names_the_package_to_install_when_missing(
    tmp_path: Path, function_env: dict[str, str]
) -> None:
    seen = run_python(
        """
        import json, sys
        sys.modules["coverage_combiner"] = None  # as if it were not installed
        from coverage_wrapper import combine_coverage_files
        from coverage_wrapper.combiner import combine_coverage_files as seed_path
        try:
            combine_coverage_files("bucket", "coverage/", "combined/report.json")
        except ImportError as exc:
            print(json.dumps({"error": str(exc), "same": seed_path is combine_coverage_files}))
        """,
        cwd=tmp_path,
        env=function_env,
    )
    assert seen == {
        "error": "combine_coverage_files lives in the lambda-coverage-combiner package: "
        "pip install lambda-coverage-combiner (or lambda-coverage-wrapper[combiner])",
        "same": True,
    }


def test_zero_code_init_imports_nothing_that_only_uploads_need(
    tmp_path: Path, function_env: dict[str, str]
) -> None:
    # What a measuring cold start loads beyond coverage.py is its cost over the
    # floor (BENCHMARKS.md): the upload machinery waits for the first upload,
    # which never comes in the function process with the layer's extension.
    function_env["COVERAGE_ORIGINAL_HANDLER"] = "orders.handler"
    seen = run_python(
        """
        import json, sys
        before = set(sys.modules)
        import coverage_wrapper.handler
        added = set(sys.modules) - before
        print(json.dumps({
            "measuring": sys.gettrace() is not None or "coverage" in added,
            "orders": "orders" in added,
            "unwanted": sorted(
                m for m in added
                if m.split(".")[0] in ("boto3", "botocore", "shutil", "bz2", "lzma")
                or m in ("coverage_wrapper.uploader", "coverage_wrapper.delivery",
                         "coverage_wrapper.session_uploads", "coverage_wrapper.health_check")
            ),
        }))
        """,
        cwd=tmp_path,
        env=function_env,
    )
    assert seen == {"measuring": True, "orders": True, "unwanted": []}


def test_the_first_start_takes_no_call_stack_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coverage.collector
    import coverage.debug

    from coverage_wrapper.config import load_config
    from coverage_wrapper.measurement import Measurement

    (tmp_path / "orders.py").write_text(ORDERS)
    stacks: list[int] = []
    real_stack = inspect.stack

    def counted_stack(context: int = 1) -> list[inspect.FrameInfo]:
        stacks.append(context)
        return real_stack(context)

    monkeypatch.setattr(inspect, "stack", counted_stack)
    config = load_config({"LAMBDA_TASK_ROOT": str(tmp_path), "COVERAGE_SPOOL_DIR": str(tmp_path)})
    measurement = Measurement(config)
    assert measurement.enter("invocation")
    measurement.exit()
    measurement.close()
    # coverage.py's own summary of the call stack, which costs 9-18 ms at a
    # zero-code cold start, was not taken; and its function is back in place.
    assert stacks == []
    assert vars(coverage.collector)["short_stack"] is coverage.debug.short_stack
