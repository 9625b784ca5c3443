"""The publisher's canary on the local runtime, with a layer zip from the builder."""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coverage_cdk_constructs import build_layer
from coverage_cdk_constructs.canary import EXPECTED_LINES
from test_stack.layer_canary import LocalCanary
from test_stack.s3_server import moto_s3_server, s3_client

ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:lambda-coverage-x86_64:1"
PYTHON = "{}.{}".format(*sys.version_info[:2])
BUCKET = "canary-data"

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not sys.maxsize > 2**32, reason="runs the x86_64/arm64 Linux layer"
)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The x86_64 layer zip from the builder, built once per session."""
    out = tmp_path_factory.mktemp("layers")
    if build_layer.main(["--output", str(out), "--architecture", "x86_64"]) != 0:
        pytest.skip("the layer could not be built (coverage.py's Lambda wheels unreachable)")
    return out / build_layer.layer_file_name("x86_64")


def _rezip(source: Path, target: Path, change: object) -> Path:
    """``source`` unpacked, changed by ``change(root)``, zipped again with its modes."""
    root = target.with_suffix("")
    with zipfile.ZipFile(source) as archive:
        modes = {i.filename: i.external_attr for i in archive.infolist()}
        archive.extractall(root)
    change(root)  # type: ignore[operator]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            info = zipfile.ZipInfo(name)
            info.external_attr = modes.get(name, 0o644 << 16)
            archive.writestr(info, path.read_bytes())
    shutil.rmtree(root)
    return target


@pytest.fixture(scope="session")
def good_zip(built_zip: Path) -> Path:
    """The built zip as it ships: with checked-hash bytecode for this Python."""
    with zipfile.ZipFile(built_zip) as archive:
        tag = f".cpython-{PYTHON.replace('.', '')}.pyc"
        assert any(tag in name for name in archive.namelist()), "the builder shipped no bytecode"
    return built_zip


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with moto_s3_server() as url:
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield url


def test_the_canary_passes_on_a_good_layer(good_zip: Path, s3_url: str, tmp_path: Path) -> None:
    canary = LocalCanary(good_zip, s3_endpoint=s3_url, bucket=BUCKET, work_dir=tmp_path)
    result = canary.check("eu-west-1", ARN, "x86_64")
    assert result.problems == ()
    assert result.python == PYTHON
    assert frozenset({1, 3, 5, 8, 11, 13, 14, 15, 16, 18, 19, 22}) == EXPECTED_LINES


def test_the_canary_fails_on_the_python_tracer_and_on_the_other_architecture(
    good_zip: Path, s3_url: str, tmp_path: Path
) -> None:
    def drop_tracer(root: Path) -> None:
        for tracer in (root / "python" / "lib" / f"python{PYTHON}").rglob("coverage/tracer*.so"):
            tracer.unlink()

    tracerless = _rezip(good_zip, tmp_path / "tracerless.zip", drop_tracer)
    canary = LocalCanary(tracerless, s3_endpoint=s3_url, bucket=BUCKET, work_dir=tmp_path)
    result = canary.check("eu-west-1", ARN, "arm64")
    assert result.problems[0] == (
        "the function ran on x86_64, not on aarch64 (arm64): the layer and the function "
        "disagree on the architecture"
    )
    assert result.problems[1].startswith(
        "coverage.py measured with 'PyTracer', not a compiled core"
    )
    assert len(result.problems) == 2


def test_the_canary_sees_modules_recompiled_at_cold_start(
    good_zip: Path, s3_url: str, tmp_path: Path
) -> None:
    def drop_bytecode(root: Path) -> None:
        for cached in (root / "python").rglob("*.pyc"):
            cached.unlink()

    without = _rezip(good_zip, tmp_path / "no-bytecode.zip", drop_bytecode)
    canary = LocalCanary(without, s3_endpoint=s3_url, bucket=BUCKET, work_dir=tmp_path)
    (problem,) = canary.check("eu-west-1", ARN, "x86_64").problems
    assert "modules of the layer were recompiled at cold start" in problem
    assert "coverage_wrapper" in problem or "coverage," in problem
