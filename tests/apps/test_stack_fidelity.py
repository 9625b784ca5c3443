"""Fidelity: measuring through Lambda's lifecycle gives what plain ``coverage run`` gives.

The same events go (a) to each handler called in-process under plain
``coverage run`` and (b) through the local runtime: real ``awslambdaric``
containers, the wrapper in zero-code mode, moto's S3 and a merge of every
uploaded file. Executed lines and arcs must be identical for every file of
the test stack, and so must the answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from coverage import CoverageData

from test_stack.functions import APP_ROOT, CATALOGUE, LambdaFunction
from test_stack.instrument import instrument
from test_stack.layer import build_wrapper_layer
from test_stack.load_driver import Outcome, drive
from test_stack.pool import LocalLambda
from test_stack.reliability import comparable
from test_stack.report import download_and_merge
from test_stack.s3_server import moto_s3_server, s3_client, s3_environment
from test_stack.scenarios import Scenario, scenarios_for

pytestmark = pytest.mark.slow

Lines = dict[str, set[int]]
Arcs = dict[str, set[tuple[int, int]]]


@dataclass
class Measurement:
    """Executed lines and arcs per absolute file path, and the answer to each event."""

    lines: Lines
    arcs: Arcs
    answers: list[tuple[str | None, object]]


def read_data(data: CoverageData, into: Measurement) -> None:
    """Add a data file's lines and arcs to a measurement."""
    for name in data.measured_files():
        into.lines.setdefault(name, set()).update(data.lines(name) or ())
        into.arcs.setdefault(name, set()).update(data.arcs(name) or ())


def in_process(function: LambdaFunction, scenarios: list[Scenario], work: Path) -> Measurement:
    """(a): the handler called in-process under ``coverage run`` (module import included)."""
    events = work / f"{function.name}.events.json"
    events.write_text(json.dumps([s.event for s in scenarios]))
    data_file = work / f"{function.name}.coverage"
    empty_rc = work / "empty.rc"
    empty_rc.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(APP_ROOT)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--rcfile={empty_rc}",
            "--branch",
            f"--include={function.code_dir}/*",
            f"--data-file={data_file}",
            "-m",
            "test_stack.replay",
            "--handler",
            function.handler,
            "--events",
            str(events),
        ],
        cwd=function.code_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    outcomes = [json.loads(line) for line in completed.stdout.splitlines()]
    measured = Measurement(
        {}, {}, [comparable(o.get("errorType"), o.get("answer")) for o in outcomes]
    )
    data = CoverageData(basename=str(data_file))
    data.read()
    read_data(data, measured)
    return measured


def through_the_runtime(
    functions: Mapping[str, LambdaFunction], scenarios: list[Scenario], work: Path
) -> tuple[Measurement, list[Outcome]]:
    """(b): the local runtime, the wrapper in zero-code mode, S3, and a merge."""
    with moto_s3_server() as url:
        s3 = s3_client(url)
        s3.create_bucket(Bucket="fidelity")
        layer = build_wrapper_layer(work / "opt")
        instrumented = [instrument(f, layer=layer, bucket="fidelity") for f in functions.values()]
        with LocalLambda(
            instrumented,
            work_dir=work / "runtime",
            environment=s3_environment(url),
            max_concurrency=2,
            idle_timeout=None,
        ) as pool:
            outcomes = drive(
                lambda s: pool.invoke(s.function, s.event),
                scenarios,
                iterations=1,
                count=1,
                concurrency=3,
            )
        code_dirs = {name: f.code_dir for name, f in functions.items()}
        merged, stored, skipped = download_and_merge(
            s3, "fidelity", "coverage/", code_dirs, work / "merged"
        )
    assert not skipped
    # At least one snapshot per function; never more than one per event (a
    # snapshot is written only when something new was measured).
    assert len(functions) <= len(stored) <= len(scenarios)
    measured = Measurement({}, {}, [])
    read_data(merged, measured)
    return measured, outcomes


@dataclass
class Runs:
    """Both runs over the same scenarios."""

    scenarios: list[Scenario]
    reference: Measurement
    runtime: Measurement
    runtime_outcomes: list[Outcome]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Run (a) and (b) once for the whole module."""
    work = tmp_path_factory.mktemp("fidelity")
    scenarios = scenarios_for()
    reference = Measurement({}, {}, [])
    for function in CATALOGUE.values():
        mine = [s for s in scenarios if s.function == function.name]
        part = in_process(function, mine, work)
        for name in part.lines:
            reference.lines.setdefault(name, set()).update(part.lines[name])
            reference.arcs.setdefault(name, set()).update(part.arcs[name])
        reference.answers += part.answers
    ordered = [s for f in CATALOGUE for s in scenarios if s.function == f]
    runtime, outcomes = through_the_runtime(dict(CATALOGUE), ordered, work)
    return Runs(ordered, reference, runtime, outcomes)


def differences(reference: Measurement, measured: Measurement) -> list[str]:
    """Every file whose lines or arcs differ, naming the lines and arcs."""
    found = []
    for name in sorted(set(reference.lines) | set(measured.lines)):
        want_lines, got_lines = reference.lines.get(name, set()), measured.lines.get(name, set())
        if want_lines != got_lines:
            found.append(
                f"{name}: lines only in coverage run {sorted(want_lines - got_lines)}, "
                f"only through the runtime {sorted(got_lines - want_lines)}"
            )
        want_arcs, got_arcs = reference.arcs.get(name, set()), measured.arcs.get(name, set())
        if want_arcs != got_arcs:
            found.append(
                f"{name}: arcs only in coverage run {sorted(want_arcs - got_arcs)}, "
                f"only through the runtime {sorted(got_arcs - want_arcs)}"
            )
    return found


@pytest.mark.parametrize("function", sorted(CATALOGUE))
def test_lines_and_arcs_are_identical(runs: Runs, function: str) -> None:
    root = str(CATALOGUE[function].code_dir) + os.sep
    mine = [name for name in runs.reference.lines if name.startswith(root)]
    assert mine, f"coverage run measured nothing of {function}"

    def only(m: Measurement) -> Measurement:
        return Measurement(
            {n: v for n, v in m.lines.items() if n.startswith(root)},
            {n: v for n, v in m.arcs.items() if n.startswith(root)},
            [],
        )

    assert differences(only(runs.reference), only(runs.runtime)) == []


def test_every_file_of_the_stack_was_measured(runs: Runs) -> None:
    sources = {
        str(path)
        for f in CATALOGUE.values()
        for path in f.code_dir.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert set(runs.runtime.lines) == sources


def test_the_answers_are_identical(runs: Runs) -> None:
    through_runtime = [
        comparable(o.result.error_type, o.result.json() if o.result.ok else None)
        for o in runs.runtime_outcomes
    ]
    assert through_runtime == runs.reference.answers
    assert [o.problem for o in runs.runtime_outcomes] == [None] * len(runs.scenarios)


def test_a_difference_names_the_file_and_lines() -> None:
    reference = Measurement({"a.py": {1, 2, 3}}, {"a.py": {(1, 2), (2, 3)}}, [])
    measured = Measurement({"a.py": {1, 2, 4}}, {"a.py": {(1, 2)}}, [])
    assert differences(reference, measured) == [
        "a.py: lines only in coverage run [3], only through the runtime [4]",
        "a.py: arcs only in coverage run [(2, 3)], only through the runtime []",
    ]
