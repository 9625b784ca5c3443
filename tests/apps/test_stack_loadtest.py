"""The load-test driver, the demo and the command line."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from test_stack import aws_target, demo, loadtest, local_lambda, local_run
from test_stack.aws_target import FUNCTION_OUTPUTS
from test_stack.invocations import InvokeResult
from test_stack.load_driver import Outcome, Progress
from test_stack.load_summary import format_summary, percentile, summarize
from test_stack.scenarios import STANDARD, Scenario, scenarios_for


def result(error_type: str | None = None, answer: Any = None, cold: bool = False) -> InvokeResult:
    """An invoke result with the given outcome."""
    payload = {"errorType": error_type} if error_type else answer
    return InvokeResult(
        function="f",
        request_id="r",
        container_id="c",
        payload=json.dumps(payload).encode(),
        error_type=error_type,
        duration_ms=1.0,
        init_duration_ms=50.0 if cold else None,
    )


def coverage_rows(text: str) -> dict[str, list[str]]:
    """The coverage table's rows (file or ``TOTAL`` to Stmts, Miss, Branch, BrPart, Cover)."""
    rows = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 6 and words[-1].endswith("%") and words[1].isdigit():
            rows[words[0]] = words[1:]
    return rows


def children_of_this_process() -> list[int]:
    """Processes whose parent is this one (none that a run started may outlive it).

    Compare with the children from before the run: others may belong to the
    test session itself (aws-cdk-lib's jsii kernel is a child process).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append(int(entry.name))
    return found


# Scenarios and summaries --------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99)] == [50.0, 95.0, 99.0]
    assert percentile([7.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([], 0.5) == 0.0


def test_a_scenario_tells_expected_errors_from_failures() -> None:
    failing = Scenario("error", "key", {}, expected_error="KeyError")
    assert failing.problem(result("KeyError")) is None
    assert failing.problem(result("ValueError")) == "expected KeyError, got ValueError"
    assert failing.problem(result(answer={"statusCode": 200})) == "expected KeyError, got success"

    answering = Scenario("main", "add", {}, expected_status=400)
    assert answering.problem(result(answer={"statusCode": 400})) is None
    assert answering.problem(result(answer={"statusCode": 200})) == (
        "expected statusCode 400, got 200"
    )
    assert answering.problem(result("TypeError")) == "unexpected TypeError: "


def test_the_summary_counts_expected_errors_apart_from_failures() -> None:
    expected = Scenario("error", "key", {}, expected_error="KeyError")
    fine = Scenario("error", "none", {})
    outcomes = [
        Outcome(expected, result("KeyError", cold=True), 10.0, None),
        Outcome(fine, result(answer={"statusCode": 200}), 20.0, None),
        Outcome(fine, result("RuntimeError"), 30.0, "unexpected RuntimeError: "),
    ]

    (summary,) = summarize(outcomes).values()

    assert (summary.invokes, summary.cold_starts, summary.expected_errors) == (3, 1, 1)
    assert summary.failures == ["none: unexpected RuntimeError: "]
    table = format_summary({"error": summary})
    assert "error                  3     1     20.0     30.0     30.0" in table
    assert "Unexpected answers:\n  error: none: unexpected RuntimeError: " in table


def test_every_function_has_scenarios_and_unknown_ones_are_named() -> None:
    assert {s.function for s in STANDARD} == set(FUNCTION_OUTPUTS)
    assert {s.function for s in scenarios_for(["simple"])} == {"simple"}
    with pytest.raises(ValueError, match="no scenarios for nope; the functions are: error"):
        scenarios_for(["nope"])


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        progress = Progress(2, stream)
        progress.advance(failed=False)
        progress.advance(failed=True)

    assert plain.getvalue() == ""
    last = terminal.getvalue().rstrip("\n").split("\r")[-1]
    assert " 2/2 " in last, last
    assert last.endswith(", 1 failed]"), last


# Command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "aws"], "--target aws needs --stack NAME"),
        (["--stack", "x"], "--stack only applies to --target aws"),
        (["--iterations", "0"], "0 is not at least 1"),
        (["--concurrency", "many"], "'many' is not a whole number"),
        (["--function", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_arguments_are_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        loadtest.main(argv)
    assert exit_info.value.code == loadtest.EXIT_USAGE
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (None, "--target aws needs a region: pass --region NAME"),
        ("eu-west-1", "--target aws found no AWS credentials: set AWS_PROFILE"),
    ],
)
def test_the_aws_target_names_a_missing_region_or_credentials_in_one_line(
    region: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    # No instance metadata to ask on a developer's machine or in CI.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    argv = ["--target", "aws", "--stack", "s", *(["--region", region] if region else [])]

    code = loadtest.main(argv, io.StringIO())

    assert code == loadtest.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1, err


# The AWS target, against moto ---------------------------------------------------


@pytest.fixture
def deployed_stack(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A 'deployed' test stack in moto: functions, a bucket and the stack's outputs."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("echo.py", "def handler(event, context):\n    return event\n")
        lambda_client = boto3.client("lambda")
        for name in ("test-stack-simple", "test-stack-error"):
            lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="echo.handler",
                Code={"ZipFile": archive.getvalue()},
            )
        template = {
            "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {
                "SimpleFunctionName": {"Value": "test-stack-simple"},
                "ErrorFunctionName": {"Value": "test-stack-error"},
                "CoverageBucketName": {"Value": {"Ref": "Bucket"}},
            },
        }
        boto3.client("cloudformation").create_stack(
            StackName="coverage-test-stack", TemplateBody=json.dumps(template)
        )
        yield


@pytest.mark.usefixtures("deployed_stack")
def test_the_aws_target_invokes_the_stacks_functions(tmp_path: Path) -> None:
    out = io.StringIO()
    code = loadtest.main(
        ["--target", "aws", "--stack", "coverage-test-stack", "--out", str(tmp_path)], out
    )
    text = out.getvalue()

    # moto's Lambda echoes each event back, which is not what the functions answer.
    assert code == loadtest.EXIT_FAILURES
    assert "has no output for example-simple, main" in text
    assert "(expected ExampleSimpleFunctionName, MainFunctionName)" in text
    simple_row = next(line for line in text.splitlines() if line.startswith("simple "))
    assert simple_row.split()[1] == str(2 * len(scenarios_for(["simple"])))
    assert "error: value error: expected ValueError, got success" in text
    assert "No coverage data was found." in text


@pytest.mark.usefixtures("deployed_stack")
def test_the_aws_invoker_reads_answers_and_function_errors() -> None:
    names = {"simple": "test-stack-simple"}
    invoke = aws_target.aws_invoker(boto3.client("lambda"), names)
    answer = invoke(Scenario("simple", "echo", {"statusCode": 200}))
    assert answer.ok
    assert answer.json() == {"statusCode": 200}
    outputs = aws_target.stack_outputs(boto3.client("cloudformation"), "coverage-test-stack")
    assert aws_target.deployed_functions(outputs) == {
        "simple": "test-stack-simple",
        "error": "test-stack-error",
    }


# End to end on the local runtime -------------------------------------------------


@pytest.mark.slow
def test_the_local_load_test_reports_coverage(tmp_path: Path) -> None:
    before = set(children_of_this_process())
    out = io.StringIO()
    argv = ["--iterations", "2", "--concurrency", "2", "--function", "simple"]
    code = loadtest.main([*argv, "--function", "error", "--out", str(tmp_path)], out)
    text = out.getvalue()

    assert code == loadtest.EXIT_OK, text
    rows = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if line[:6] in ("simple", "error ")
    }
    assert rows["simple"][1] == str(2 * len(scenarios_for(["simple"])))
    assert rows["error"][-2:] == [str(2 * 7), "0"]  # expected errors, failures
    table = coverage_rows(text)
    assert set(table) == {
        "apps/test-stack/functions/error/faults.py",
        "apps/test-stack/functions/simple/echo.py",
        "TOTAL",
    }
    # Stmts, Miss, Branch, BrPart, Cover: every line and branch of both functions ran.
    assert [row[1] for row in table.values()] == ["0", "0", "0"]
    assert [row[3:] for row in table.values()] == [["0", "100%"]] * 3
    assert (tmp_path / "html" / "index.html").is_file()
    assert f"HTML report: {(tmp_path / 'html' / 'index.html').resolve()}" in text
    assert set(children_of_this_process()) <= before


@pytest.mark.slow
def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    before = set(children_of_this_process())
    out = io.StringIO()
    code = demo.main(["--out", str(tmp_path)], out)
    text = out.getvalue()

    assert code == 0, text
    assert f"{len(STANDARD)} events to 4 functions" in text
    written = re.search(
        rf"(\d+) data files in s3://{local_run.LOCAL_BUCKET}-\S+ \(\d+ KiB\) "
        rf"for {len(STANDARD)} invocations",
        text,
    )
    assert written is not None, text
    # Fewer objects than invocations: only snapshots with something new are written.
    assert 4 <= int(written.group(1)) < len(STANDARD)
    table = coverage_rows(text)
    # Every scenario line runs, except the two of health.py that only a failing check reaches.
    assert {name for name, row in table.items() if row[-1] != "100%"} == {
        "apps/test-stack/functions/main/calculator/health.py",
        "TOTAL",
    }
    assert table["apps/test-stack/functions/main/calculator/health.py"][1] == "2"
    stmts, miss, branches, partial = (int(v) for v in table["TOTAL"][:4])
    files = [row for name, row in table.items() if name != "TOTAL"]
    assert stmts == sum(int(row[0]) for row in files) > 200
    assert (miss, partial) == (2, 0)
    assert branches == sum(int(row[2]) for row in files) > 50
    assert (tmp_path / "html" / "index.html").is_file()
    assert set(children_of_this_process()) <= before


@pytest.mark.slow
def test_the_command_line_invokes_a_warm_container(capsys: pytest.CaptureFixture[str]) -> None:
    code = local_lambda.main(["invoke", "simple", "--event", '{"message": "hi"}', "--times", "2"])
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())

    assert code == local_lambda.EXIT_OK
    assert first["answer"]["body"] == second["answer"]["body"] == "hi"
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert first["container"] == second["container"]


@pytest.mark.slow
def test_the_command_line_reports_a_function_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = local_lambda.main(["invoke", "error", "--event", '{"error_type": "custom"}'])
    (line,) = capsys.readouterr().out.splitlines()
    assert code == local_lambda.EXIT_FUNCTION_ERROR
    assert json.loads(line)["error_type"] == "PaymentDeclinedError"


def test_the_command_line_names_a_bad_event(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        local_lambda.main(["invoke", "main", "--event", "{oops"])
    assert exit_info.value.code == local_lambda.EXIT_USAGE
    assert "the event is not JSON" in capsys.readouterr().err


def test_the_command_line_lists_the_functions(capsys: pytest.CaptureFixture[str]) -> None:
    assert local_lambda.main(["list"]) == 0
    listed = [line.split()[:2] for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        ["main", "calculator.app.handler"],
        ["simple", "echo.handler"],
        ["error", "faults.handler"],
        ["example-simple", "app.handler"],
    ]
