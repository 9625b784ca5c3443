"""Paths in data files are untrusted: a report reads no file outside the folders given.

A hostile data file can name any path. Before, an absolute path or one that
climbed out with ``../`` was mapped as it was, and any file that parsed as
Python was copied into the HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coverage_combiner import PathRemapper
from coverage_combiner.cli import EXIT_PARTIAL, main
from tests.combiner.conftest import key, read_data, write_data

SECRET = "aws_secret_access_key = 'CANARY-7f3a9c'\n"
APP = "def handler(event, context):\n    return 1\n"


def test_absolute_climbing_and_linked_paths_are_refused_and_never_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home" / "u"
    (home / ".aws").mkdir(parents=True)
    credentials = home / ".aws" / "credentials"
    credentials.write_text(SECRET)  # parses as Python: it would be reported
    source = tmp_path / "checkout" / "orders"
    source.mkdir(parents=True)
    (source / "app.py").write_text(APP)
    (source / "linked.py").symlink_to(credentials)
    inputs = tmp_path / "bucket"
    write_data(
        inputs / key(),
        lines={
            "orders@$LATEST": {
                "app.py": {1, 2},
                str(credentials): {1},
                "../../home/u/.aws/credentials": {1},
                "/var/task/../../" + str(credentials).lstrip("/"): {1},
                "linked.py": {1},
            }
        },
    )
    out = tmp_path / "out"
    code = main(
        [
            "combine",
            str(inputs),
            "-o",
            str(out),
            "--source-root",
            str(source),
            "--format",
            "data,json,xml,lcov,html",
            "--json",
        ]
    )
    assert code == EXIT_PARTIAL
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert [(r["path"], r["reason"].split(";")[0]) for r in summary["refused_paths"]] == [
        ("../../home/u/.aws/credentials", f"it leaves its function folder '{source}'"),
        (str(credentials), "an absolute path outside the task root and the source roots"),
        (
            "/var/task/../../" + str(credentials).lstrip("/"),
            f"it leaves its function folder '{source}'",
        ),
        ("linked.py", f"it leaves its function folder '{source}'"),
    ]
    for refused in summary["refused_paths"]:
        assert f"refused measured path {refused['path']!r} of orders" in captured.err
    # Only the function's own file is in the data and the reports; the secret nowhere.
    lines, _, _ = read_data(out / ".coverage")
    assert lines == {str(source / "app.py"): {1, 2}}
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    assert not [p for p in written if "CANARY" in p.read_text(errors="replace")]


def test_an_absolute_path_inside_a_named_root_or_a_paths_rule_is_read(tmp_path: Path) -> None:
    """Data from another tool (absolute paths) is reported when its folder is named."""
    checkout = tmp_path / "ci" / "project"
    checkout.mkdir(parents=True)
    (checkout / "app.py").write_text(APP)
    inside = PathRemapper.build(source_roots=[str(checkout)]).resolve(
        {None: [str(checkout / "app.py")]}
    )
    assert inside.refused == {}
    assert inside.map(str(checkout / "app.py")) == str(checkout / "app.py")
    ruled = PathRemapper.build(paths=[f"/build/=/{checkout}/"]).resolve(
        {"orders": ["/build/app.py", "/build/../../etc/passwd"]}
    )
    assert ruled.refused == {
        ("orders", "/build/../../etc/passwd"): f"it leaves the --paths target '/{checkout}/'"
    }
