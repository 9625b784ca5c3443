"""What is measured: the function's own code in the task root, and nothing else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from coverage_wrapper import coverage_handler
from coverage_wrapper.scope import measured_scope, vendored_top_levels
from tests.wrapper.conftest import lambda_context, union_lines, uploads, use_core, write_module

APP = """\
import json
import vendored_lib
import six_like
from helpers import shout


def handler(event, context):
    text = json.dumps(event)
    return shout(vendored_lib.wrap(six_like.ident(text)))
"""


def vendor(root: Path) -> None:
    """Packages ``pip install --target`` would leave in the task root."""
    write_module(root, "vendored_lib/__init__.py", "def wrap(text):\n    return f'<{text}>'\n")
    write_module(root, "vendored_lib-1.0.dist-info/top_level.txt", "vendored_lib\n")
    write_module(root, "vendored_lib-1.0.dist-info/METADATA", "Name: vendored-lib\n")
    # A module whose wheel has no top_level.txt, only a RECORD.
    write_module(root, "six_like.py", "def ident(x):\n    return x\n")
    write_module(
        root,
        "six_like-2.0.dist-info/RECORD",
        "six_like.py,sha256=abc,30\nsix_like-2.0.dist-info/RECORD,,\n",
    )


@pytest.fixture
def app(task_root: Path) -> Any:
    """The function module, with vendored packages and a helper of its own beside it."""
    vendor(task_root)
    write_module(task_root, "helpers.py", "def shout(text):\n    return text.upper()\n")
    write_module(task_root, "app.py", APP)
    import app  # type: ignore[import-not-found]

    return app


def test_vendored_packages_in_the_task_root_are_not_measured(
    app: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    assert coverage_handler(app.handler)({"a": 1}, lambda_context()) == '<{"A": 1}>'
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"app.py": {8, 9}, "helpers.py": {2}}


def test_exclude_patterns(
    app: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_EXCLUDE_PATTERNS", "helpers.py")
    coverage_handler(app.handler)({}, lambda_context())
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"app.py": {8, 9}}


def test_include_patterns_replace_the_default_scope(
    app: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    coverage_handler(include="helpers.py")(app.handler)({}, lambda_context())
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"helpers.py": {2}}


def test_the_scope_patterns(tmp_path: Path) -> None:
    vendor(tmp_path)
    assert vendored_top_levels(str(tmp_path)) == {"vendored_lib", "six_like"}
    scope = measured_scope(str(tmp_path), (), ("tests/*", "/abs/*"))
    assert scope.include == (f"{tmp_path}/*",)
    assert scope.omit == (
        "/opt/*",
        "*/site-packages/*",
        "*/dist-packages/*",
        f"{tmp_path}/tests/*",
        "/abs/*",
        f"{tmp_path}/six_like/*",
        f"{tmp_path}/six_like.py",
        f"{tmp_path}/vendored_lib/*",
        f"{tmp_path}/vendored_lib.py",
    )
    assert vendored_top_levels(str(tmp_path / "missing")) == set()


@pytest.mark.parametrize(
    "core",
    [
        "ctrace",
        "pytrace",
        pytest.param(
            "sysmon",
            marks=pytest.mark.skipif(
                sys.version_info < (3, 12), reason="sys.monitoring needs 3.12"
            ),
        ),
    ],
)
def test_every_core_measures_the_same_lines(
    task_root: Path,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    core: str,
) -> None:
    use_core(monkeypatch, core)
    write_module(
        task_root,
        "helpers.py",
        "def shout(text):\n    if text:\n        return text.upper()\n    return ''\n",
    )
    import helpers  # type: ignore[import-not-found]

    def shout_handler(event: dict[str, str], context: Any) -> str:
        return str(helpers.shout(event["t"]))

    handler = coverage_handler(shout_handler)
    assert handler({"t": "a"}, lambda_context()) == "A"
    assert union_lines(uploads(s3, bucket, tmp_path)) == {"helpers.py": {2, 3}}
    from coverage_wrapper import health_check_handler

    names = {"ctrace": "CTracer", "pytrace": "PyTracer", "sysmon": "SysMonitor"}
    assert health_check_handler()["measurement"]["core"] == names[core]
    assert sys.gettrace() is None
