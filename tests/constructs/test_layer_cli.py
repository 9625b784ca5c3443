"""lambda-coverage-layer: build without the CDK, bytecode per Python, validate good and bad zips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from coverage_cdk_constructs import cli
from coverage_cdk_constructs.bundle import Bundle
from coverage_cdk_constructs.bytecode import find_interpreter
from coverage_cdk_constructs.lambda_platform import SUPPORTED_PYTHONS, LambdaPlatform
from coverage_cdk_constructs.validate_layer import validate_layer

#: Runs the CLI in a fresh interpreter and reports what it loaded of the CDK (its Node.js
#: kernel) and of botocore (only publishing needs it).
CLI_RUNNER = """
import json, sys
from coverage_cdk_constructs.cli import main
code = main(sys.argv[1:])
heavy = sorted(
    m for m in sys.modules if m.split(".")[0] in ("aws_cdk", "jsii", "constructs", "botocore")
)
print(json.dumps({"code": code, "heavy": heavy}))
"""
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
X86_SITE = LambdaPlatform(HERE, "x86_64").site_packages


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI_RUNNER, *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _fresh_cache(bundle: Bundle, tmp_path: Path) -> Path:
    """A cache holding only the downloaded wheels: the zips are built anew, offline."""
    cache = tmp_path / "cache"
    shutil.copytree(bundle.path.parent.parent / "wheels", cache / "wheels")
    return cache


def test_build_starts_no_cdk_and_rebuilds_the_same_bytes(
    layer_bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    bundle = layer_bundles["x86_64"]
    output = tmp_path / "dist"
    cache = _fresh_cache(bundle, tmp_path)
    done = _run_cli(
        "build", "--output", str(output), "--architecture", "x86_64", "--cache-dir", str(cache)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    # Built twice (the session's zip and this one, in another cache): the same bytes.
    assert (output / "lambda-coverage-layer-x86_64.zip").read_bytes() == bundle.path.read_bytes()
    skipped = [p for p in SUPPORTED_PYTHONS if find_interpreter(p) is None]
    (entry,) = json.loads((output / "build.json").read_text())
    assert entry["bytecode_skipped"] == skipped
    assert {p for p, v in entry["pythons"].items() if not v["bytecode"]} == set(skipped)
    for python in skipped:
        assert f"no bytecode for Python {python}" in done.stderr


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_each_installed_python_compiled_checked_hash_bytecode(
    layer_bundles: dict[str, Bundle], architecture: str
) -> None:
    bundle = layer_bundles[architecture]
    names = set(bundle.names())
    assert bundle.bytecode_skipped == tuple(
        p for p in SUPPORTED_PYTHONS if find_interpreter(p) is None
    )
    with zipfile.ZipFile(bundle.path) as archive:
        for python in SUPPORTED_PYTHONS:
            tag = python.replace(".", "")
            site = LambdaPlatform(python, architecture).site_packages
            ours = f"python/coverage_wrapper/__pycache__/handler.cpython-{tag}.pyc"
            theirs = f"{site}/coverage/__pycache__/control.cpython-{tag}.pyc"
            if python in bundle.bytecode_skipped:
                assert not {ours, theirs} & names, python
                continue
            for pyc in (ours, theirs):
                header = archive.read(pyc)[:16]
                assert int.from_bytes(header[4:8], "little") == 0b11, pyc  # checked hash
            # Another Python's site-packages gets no bytecode of this one.
            others = [n for n in names if n.endswith(f".cpython-{tag}.pyc") and "/lib/" in n]
            assert all(n.startswith(site) for n in others), python


def test_a_good_layer_validates_and_starts_here(layer_bundles: dict[str, Bundle]) -> None:
    result = validate_layer(layer_bundles["x86_64"].path)
    assert result.problems == []
    assert result.architecture == "x86_64"
    if os.uname().machine == "x86_64":
        assert result.notes == []  # it ran: wrapper, combiner, tracer and extension
    arm = validate_layer(layer_bundles["arm64"].path)
    assert arm.problems == []
    assert arm.architecture == "arm64"


def _rewrite(
    source: Path,
    destination: Path,
    *,
    add: Mapping[str, bytes] = {},
    drop: frozenset[str] = frozenset(),
) -> Path:
    """A copy of the zip ``source`` with entries added, replaced or dropped."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w") as copy:
        for info in original.infolist():
            if info.filename not in drop and info.filename not in add:
                copy.writestr(info, original.read(info))
        for name, data in add.items():
            copy.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return destination


def _arm_tracer(layer_bundles: dict[str, Bundle]) -> bytes:
    platform = LambdaPlatform(HERE, "arm64")
    with zipfile.ZipFile(layer_bundles["arm64"].path) as archive:
        return archive.read(f"{platform.site_packages}/{platform.tracer_file}")


X86_TRACER = f"{X86_SITE}/{LambdaPlatform(HERE, 'x86_64').tracer_file}"
HANDLER_PYC = f"python/coverage_wrapper/__pycache__/handler.cpython-{HERE.replace('.', '')}.pyc"


@pytest.mark.parametrize(
    ("change", "kind", "message"),
    [
        (
            {"add": {"python/boto3/__init__.py": b""}},
            "forbidden",
            "python/boto3/__init__.py: boto3",
        ),
        (
            {"add": {"python/coverage_wrapper/tests/test_it.py": b""}},
            "forbidden",
            "tests do not belong",
        ),
        ({"add": {"python/notes.txt": b"hi"}}, "layout", "python/notes.txt: outside the layer"),
        ({"add": {"README.md": b"hi"}}, "layout", "README.md: outside the layer"),
        (
            {"add": {"python/coverage_wrapper/.pytest_cache/v": b""}},
            "forbidden",
            "a cache or hidden file",
        ),
        ({"add": {"python/coverage_wrapper/old.pyc": b""}}, "forbidden", "old.pyc: a cache"),
        (
            {"drop": frozenset({"extensions/lambda-coverage"})},
            "layout",
            "lambda-coverage is missing",
        ),
        ({"add": {X86_TRACER: "arm"}}, "tracer", "is compiled for aarch64, not x86_64"),
        (
            {"add": {X86_TRACER.replace("x86_64", "aarch64"): "arm"}},
            "tracer",
            "not the tracer of Python",
        ),
        ({"drop": frozenset({HANDLER_PYC})}, "run", "compiled from source at start"),
    ],
)
def test_each_kind_of_bad_layer_fails_naming_the_problem(
    layer_bundles: dict[str, Bundle],
    tmp_path: Path,
    change: dict[str, object],
    kind: str,
    message: str,
) -> None:
    add = {
        name: _arm_tracer(layer_bundles) if data == "arm" else data
        for name, data in dict(change.get("add", {})).items()  # type: ignore[call-overload]
    }
    drop = change.get("drop", frozenset())
    assert isinstance(drop, frozenset)
    bad = _rewrite(
        layer_bundles["x86_64"].path,
        tmp_path / "lambda-coverage-layer-x86_64.zip",
        add=add,
        drop=drop,
    )
    if kind == "run" and os.uname().machine != "x86_64":
        pytest.skip("the x86_64 layer runs on an x86_64 machine only")
    result = validate_layer(bad)
    assert {p.kind for p in result.problems} == {kind}, result.problems
    assert any(message in p.message for p in result.problems), result.problems


def test_an_oversized_layer_fails_against_the_limits(layer_bundles: dict[str, Bundle]) -> None:
    bundle = layer_bundles["arm64"]
    result = validate_layer(bundle.path, max_zipped=bundle.size - 1, run=False)
    assert [p.kind for p in result.problems] == ["size"]
    assert f"over the {bundle.size - 1:,}-byte limit" in result.problems[0].message
    unzipped = validate_layer(bundle.path, max_unzipped=bundle.unzipped_size() - 1, run=False)
    assert [p.kind for p in unzipped.problems] == ["size"]
    assert "over Lambda's" in unzipped.problems[0].message


def test_the_wheel_tags_must_fit_the_python_they_serve(
    layer_bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    bundle = layer_bundles["arm64"]
    platform = LambdaPlatform("3.12", "arm64")
    wheel = next(
        n
        for n in bundle.names()
        if n.startswith(f"{platform.site_packages}/coverage-") and n.endswith("/WHEEL")
    )
    with zipfile.ZipFile(bundle.path) as archive:
        text = archive.read(wheel).decode()
    bad = _rewrite(
        bundle.path,
        tmp_path / "layer.zip",
        add={wheel: text.replace("cp312-cp312-", "cp313-cp313-").encode()},
    )
    result = validate_layer(bad, architecture="arm64", run=False)
    assert [p.kind for p in result.problems] == ["tracer"]
    assert "are not cp312-cp312 for Python 3.12 on arm64" in result.problems[0].message


def test_validate_exits_non_zero_and_names_each_problem(
    layer_bundles: dict[str, Bundle], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = layer_bundles["arm64"].path
    bad = _rewrite(good, tmp_path / "bad-arm64.zip", add={"python/boto3/__init__.py": b""})
    assert cli.main(["validate", str(good)]) == cli.EXIT_OK
    assert cli.main(["validate", str(good), str(bad)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert f"{bad}: forbidden: python/boto3/__init__.py: boto3 belongs to the Lambda runtime" in err
    assert cli.main(["validate"]) == cli.EXIT_USAGE
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE


def test_validate_shows_member_names_without_their_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = tmp_path / "hostile-x86_64.zip"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("python/\x1b]0;owned\x07\u202eevil.txt", b"x")
        archive.writestr("python/boto3/\x1b[2K__init__.py", b"")
    assert cli.main(["validate", "--no-run", str(hostile)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", err) is None
    assert f"{hostile}: layout: python/\\x1b]0;owned\\x07\\u202eevil.txt: outside" in err
    assert f"{hostile}: forbidden: python/boto3/\\x1b[2K__init__.py: boto3 belongs" in err


def test_subcommands_plug_in_as_modules(tmp_path: Path) -> None:
    parser = cli.parser()
    args = parser.parse_args(["build", "--output", str(tmp_path)])
    from coverage_cdk_constructs import arn_lookup, build_layer, publish
    from coverage_cdk_constructs import validate_layer as validate_module

    assert args.run is build_layer.run
    assert parser.parse_args(["validate", "x.zip"]).run is validate_module.run
    publishing = ["publish", "--zip", "x.zip", "--architecture", "arm64", "--regions", "eu-west-1"]
    assert parser.parse_args(publishing).run is publish.run
    lookup = ["arn", "--region", "eu-west-1", "--architecture", "arm64"]
    assert parser.parse_args(lookup).run is arn_lookup.run
    modules = (build_layer, validate_module, publish, arn_lookup)
    assert tuple(module.__name__ for module in modules) == cli.SUBCOMMANDS
