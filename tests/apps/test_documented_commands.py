"""The documented ``make`` commands run as written, hatch's placeholders included.

Each ``make functions`` and ``make invoke`` line of the test stack README's
command block, and ``make combine`` (docs/aws.md) on a local folder, is run
through the Makefile with a stand-in for hatch: ``env create`` does
nothing, ``run CMD...`` runs CMD with this interpreter, and any argument
holding ``{`` or ``}`` is refused, as hatch would read it as a placeholder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from tests.apps.conftest import REPO_ROOT
from tests.combiner.conftest import read_data, write_data

README: Final = REPO_ROOT / "apps" / "test-stack" / "README.md"
ADD: Final = """make invoke FUNCTION=main EVENT='{"operation": "add", "numbers": [1, 2]}'"""
KEY_ERROR: Final = """make invoke FUNCTION=error EVENT='{"error_type": "key"}' INVOKE_ARGS=--logs"""
MULTIPLY_MEASURED: Final = (
    """make invoke FUNCTION=main EVENT='{"operation": "multiply", "numbers": [2, 3]}' """
    """INVOKE_ARGS="--times 20 --concurrency 4 --coverage\""""
)

HATCH_STAND_IN: Final = """\
#!/bin/sh
case "$1" in env) exit 0;; run) shift;; *) echo "unexpected: hatch $*" >&2; exit 64;; esac
for arg in "$@"; do
  case "$arg" in *[{}]*) echo "hatch would read a placeholder in: $arg" >&2; exit 65;; esac
done
exec "$@"
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def documented() -> list[str]:
    """The ``make functions`` and ``make invoke`` lines of the README's command block."""
    block = re.search(r"## Commands\n.*?```bash\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None, README
    return [
        line.split("  #")[0].strip()
        for line in block.group(1).splitlines()
        if line.startswith(("make functions", "make invoke"))
    ]


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def stand_ins(tmp_path: Path) -> Path:
    """A folder holding the hatch stand-in and a ``python`` that is this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _executable(bin_dir / "hatch", HATCH_STAND_IN)
    # A script, not a link: a link to a virtual environment's python leaves the environment.
    _executable(bin_dir / "python", f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    return bin_dir


def run_make(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``command`` (a ``make ...`` line) run in ``tmp_path`` with the hatch stand-in."""
    bin_dir = stand_ins(tmp_path)
    make, *arguments = shlex.split(command)
    assert make == "make"
    makefile = str(REPO_ROOT / "Makefile")
    hatch = f"HATCH={bin_dir / 'hatch'}"
    return subprocess.run(
        ["make", "--no-print-directory", "-f", makefile, *arguments, hatch],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def answers(stdout: str) -> list[dict[str, Any]]:
    """The JSON lines ``local_lambda invoke`` printed."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_the_readme_documents_these_commands() -> None:
    assert documented() == ["make functions", ADD, KEY_ERROR, MULTIPLY_MEASURED]


def test_make_functions_lists_the_catalogue(tmp_path: Path) -> None:
    from test_stack.functions import CATALOGUE

    run = run_make("make functions", tmp_path)
    assert run.returncode == 0, run.stderr
    listed = [line.split()[0] for line in run.stdout.splitlines() if not line.startswith("/")]
    assert sorted(listed) == sorted(CATALOGUE)


def test_make_invoke_passes_the_json_event(tmp_path: Path) -> None:
    run = run_make(ADD, tmp_path)
    assert run.returncode == 0, run.stderr
    (answer,) = answers(run.stdout)
    assert (answer["function"], answer["error_type"]) == ("main", None)
    assert json.loads(answer["answer"]["body"])["result"] == 3


def test_make_invoke_stops_on_a_function_error(tmp_path: Path) -> None:
    run = run_make(KEY_ERROR, tmp_path)
    assert run.returncode != 0
    (answer,) = answers(run.stdout)
    assert (answer["function"], answer["error_type"]) == ("error", "KeyError")
    assert "Error 1" in run.stderr


@pytest.mark.slow
def test_make_invoke_with_coverage_measures_the_calls(tmp_path: Path) -> None:
    run = run_make(MULTIPLY_MEASURED, tmp_path)
    assert run.returncode == 0, run.stderr
    found = answers(run.stdout)
    assert len(found) == 20
    assert {json.loads(a["answer"]["body"])["result"] for a in found} == {6}
    # The handler's module was measured: fewer statements missed than it has.
    row = next(line for line in run.stdout.splitlines() if "calculator/app.py" in line)
    statements, missed = (int(n) for n in row.split()[1:3])
    assert 0 <= missed < statements, row
    assert (tmp_path / "out" / "local-lambda" / "html" / "index.html").is_file()


def test_make_combine_merges_a_folder_and_asks_for_a_source(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "coverage" / "2026" / "11" / "25" / "orders" / "LATEST"
    for pid, executed in ((7, {1, 2}), (8, {2, 5})):
        write_data(
            folder / f"0123456789abcdef-{pid}-000001.coverage",
            lines={"orders": {"app.py": executed}},
        )
    run = run_make('make combine SOURCE=data OUT=out COMBINE_ARGS="--format data"', tmp_path)
    assert run.returncode == 0, run.stderr
    lines, _, _ = read_data(tmp_path / "out" / ".coverage")
    assert lines == {str(tmp_path / "app.py"): {1, 2, 5}}
    missing = run_make("make combine", tmp_path)
    assert missing.returncode != 0
    assert "name the data: make combine SOURCE=s3://BUCKET/coverage/" in missing.stdout


def test_every_make_target_the_docs_name_exists() -> None:
    docs = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", REPO_ROOT / "docs" / "aws.md"]
    docs += [README, *sorted(REPO_ROOT.glob("packages/*/README.md"))]
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = {
        name
        for rule in re.findall(r"^([a-z][\w -]*):", makefile, re.MULTILINE)
        for name in rule.split()
    }
    named = {
        (doc.relative_to(REPO_ROOT).as_posix(), target)
        for doc in docs
        for target in re.findall(r"(?:`|^)make ([a-z][\w-]*)", doc.read_text(), re.MULTILINE)
    }
    assert {t for _, t in named} >= {"demo", "test", "invoke", "combine", "audit", "cdk-bootstrap"}
    assert sorted((doc, t) for doc, t in named if t not in targets) == []


def test_the_stand_in_refuses_what_hatch_would_misread(tmp_path: Path) -> None:
    """The negative control: JSON on hatch's command line is what the README must avoid."""
    bin_dir = stand_ins(tmp_path)
    refused = subprocess.run(
        [str(bin_dir / "hatch"), "run", "python", "-c", "print({})"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 65, refused
    assert "placeholder in: print({})" in refused.stderr
