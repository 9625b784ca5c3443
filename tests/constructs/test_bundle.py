"""The built zips: the compiled tracer per platform, the wrapper importable, small, reproducible."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from coverage_cdk_constructs import build_layer
from coverage_cdk_constructs.bundle import (
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    ZIP_TIMESTAMP,
    Bundle,
    BundleSpec,
    SourcePackage,
    build_bundle,
    write_zip,
)
from coverage_cdk_constructs.bundled_packages import layer_spec, monorepo_source
from coverage_cdk_constructs.errors import LayerBuildError
from coverage_cdk_constructs.lambda_platform import (
    DEFAULT_COVERAGE_VERSIONS,
    SUPPORTED_PYTHONS,
    LambdaPlatform,
)
from coverage_cdk_constructs.wheels import unpack_wheel, wheel_fits
from coverage_wrapper.constants import EXTENSION_NAME
from coverage_wrapper.extension import LAUNCHER_FILE

ELF_MACHINE = {"x86_64": 0x3E, "aarch64": 0xB7}
WRAPPER_SOURCE = monorepo_source("coverage-wrapper", "coverage_wrapper")


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF shared object"
    return int.from_bytes(data[18:20], "little")


def _wheel_tags(archive: zipfile.ZipFile, site_packages: str, version: str) -> list[str]:
    wheel_file = f"{site_packages}/coverage-{version}.dist-info/WHEEL"
    lines = archive.read(wheel_file).decode().splitlines()
    return [line.removeprefix("Tag: ") for line in lines if line.startswith("Tag: ")]


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_each_python_gets_the_compiled_tracer_of_its_platform(
    layer_bundles: dict[str, Bundle], architecture: str
) -> None:
    bundle = layer_bundles[architecture]
    assert bundle.spec.pythons == SUPPORTED_PYTHONS
    with zipfile.ZipFile(bundle.path) as archive:
        names = set(archive.namelist())
        for python in SUPPORTED_PYTHONS:
            platform = LambdaPlatform(python, architecture)
            site = platform.site_packages
            tracer = f"{site}/{platform.tracer_file}"
            assert tracer in names, tracer
            assert _elf_machine(archive.read(tracer)) == ELF_MACHINE[platform.machine]
            # Only this Python's tracer in its folder: no other ABI, no other CPU.
            assert [
                n for n in names if n.startswith(f"{site}/coverage/") and n.endswith(".so")
            ] == [tracer]
            tags = _wheel_tags(archive, site, DEFAULT_COVERAGE_VERSIONS[python])
            assert tags, "the wheel's own tags are kept in its dist-info"
            split = [tag.split("-") for tag in tags]
            assert {(interpreter, abi) for interpreter, abi, _ in split} == {
                (platform.abi, platform.abi)
            }
            # One of the wheel's platform tags is one the runtime image can load.
            assert {p for _, _, p in split} & set(platform.platform_tags())


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_the_layer_holds_the_wrapper_and_nothing_the_runtime_does_not_need(
    layer_bundles: dict[str, Bundle], architecture: str
) -> None:
    bundle = layer_bundles[architecture]
    names = bundle.names()
    sources = [n for n in names if "__pycache__" not in n.split("/")]
    for folder, import_name in (
        ("coverage-wrapper", "coverage_wrapper"),
        ("coverage-combiner", "coverage_combiner"),
    ):
        source = monorepo_source(folder, import_name)
        assert source is not None
        shipped = sorted(n for n in sources if n.startswith(f"python/{import_name}/"))
        expected = [
            f"python/{import_name}/{p.as_posix()}"
            for p in SourcePackage(import_name, source).files()
        ]
        assert shipped == sorted(expected)
    assert "python/coverage_wrapper/handler.py" in names
    assert "python/coverage_wrapper/py.typed" in names
    assert "python/coverage_combiner/api.py" in names
    for name in names:
        parts = name.split("/")
        assert "tests" not in parts, name
        assert not name.endswith(".pyo"), name
        assert name.endswith(".pyc") == ("__pycache__" in parts), name
        assert not any(p.startswith(("boto3", "botocore", "s3transfer")) for p in parts), name
        # The wrapper's extension is the only thing beside python/.
        assert parts[0] == "python" or name == f"extensions/{EXTENSION_NAME}", name
    assert bundle.size < MAX_ZIPPED_BYTES
    assert bundle.unzipped_size() < MAX_UNZIPPED_BYTES


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_the_layer_carries_the_wrappers_extension_executable(
    layer_bundles: dict[str, Bundle], architecture: str, tmp_path: Path
) -> None:
    bundle = layer_bundles[architecture]
    with zipfile.ZipFile(bundle.path) as archive:
        info = archive.getinfo(f"extensions/{EXTENSION_NAME}")
        launcher = archive.read(f"python/coverage_wrapper/{LAUNCHER_FILE}")
        assert archive.read(info) == launcher
        archive.extractall(tmp_path)
    # Lambda honours Unix mode bits: the file must be executable once unzipped.
    assert info.create_system == 3
    assert (info.external_attr >> 16) & 0o111 == 0o111
    executable = tmp_path / "extensions" / EXTENSION_NAME
    executable.chmod(info.external_attr >> 16 & 0o777)
    assert launcher.startswith(b"#!/usr/bin/env python3\n")
    # Started from its own folder it finds the wrapper in ../python and asks
    # for the Extensions API it needs.
    started = subprocess.run(
        [str(executable)],
        env={"PATH": os.environ["PATH"], "COVERAGE_SPOOL_DIR": str(tmp_path / "spool")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert started.returncode == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in started.stdout


def test_the_zip_is_deterministic(layer_bundles: dict[str, Bundle]) -> None:
    bundle = layer_bundles["x86_64"]
    with zipfile.ZipFile(bundle.path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {ZIP_TIMESTAMP}
    modes = {i.filename: i.external_attr >> 16 for i in infos}
    assert modes.pop(f"extensions/{EXTENSION_NAME}") == 0o100755
    assert set(modes.values()) == {0o100644}


def test_the_same_inputs_build_the_same_bytes_in_another_cache(
    layer_bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    original = layer_bundles["arm64"]
    cache = tmp_path / "cache"
    # The downloaded wheels only, so nothing is fetched and the zip is built anew.
    shutil.copytree(original.path.parent.parent / "wheels", cache / "wheels")
    rebuilt = build_bundle(layer_spec("arm64"), cache_dir=cache)
    assert rebuilt.path != original.path
    assert rebuilt.fingerprint == original.fingerprint
    assert rebuilt.path.read_bytes() == original.path.read_bytes()


def test_the_fingerprint_follows_the_inputs_and_nothing_else(tmp_path: Path) -> None:
    assert WRAPPER_SOURCE is not None
    copy = tmp_path / "coverage_wrapper"
    shutil.copytree(WRAPPER_SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def spec(**changes: object) -> BundleSpec:
        settings: dict[str, object] = {
            "layout": "layer",
            "architecture": "x86_64",
            "pythons": ("3.12",),
            "packages": (SourcePackage("coverage_wrapper", copy),),
        } | changes
        return BundleSpec(**settings)  # type: ignore[arg-type]

    first = spec().fingerprint()
    os.utime(copy / "handler.py", (0, 0))
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"stale")
    assert spec().fingerprint() == first  # timestamps and bytecode are not inputs
    changed = {
        spec(architecture="arm64").fingerprint(),
        spec(pythons=("3.13",)).fingerprint(),
        spec(coverage_versions={"3.12": "7.17.3"}).fingerprint(),
        spec(layout="function").fingerprint(),
        spec(bytecode=False).fingerprint(),
    }
    (copy / "handler.py").write_text((copy / "handler.py").read_text() + "\n# changed\n")
    changed.add(spec().fingerprint())
    assert first not in changed
    assert len(changed) == 6


def _python(version: str) -> str | None:
    """An interpreter of ``version``: pyenv's own, else one on the PATH (not a pyenv shim)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


IMPORT_CHECK = """
import json, sys, types
sys.path[:0] = sys.argv[1:]
import coverage
from coverage.tracer import CTracer  # the compiled tracer loads on this interpreter
import coverage_wrapper.handler as zero_code
answer = zero_code.handler({"n": 2}, types.SimpleNamespace(aws_request_id="r1"))
print(json.dumps({"coverage": coverage.__file__, "wrapper": zero_code.__file__,
                  "answer": answer, "tracer": CTracer.__name__}))
"""


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_the_wrapper_runs_from_the_unzipped_layer(
    layer_bundles: dict[str, Bundle], python: str, tmp_path: Path
) -> None:
    """Unzipped as Lambda does into ``/opt``: the zero-code handler answers on that Python."""
    executable = _python(python)
    if executable is None:
        pytest.skip(f"Python {python} is not installed here")
    if os.uname().machine != "x86_64":
        pytest.skip("the x86_64 layer runs on an x86_64 machine only")
    opt = tmp_path / "opt"
    with zipfile.ZipFile(layer_bundles["x86_64"].path) as archive:
        archive.extractall(opt)
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text("def handler(event, context):\n    return event['n'] * 21\n")
    site = opt / LambdaPlatform(python, "x86_64").site_packages
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "COVERAGE_ORIGINAL_HANDLER": "app.handler",
        "COVERAGE_SPOOL_DIR": str(tmp_path / "spool"),
        "COVERAGE_LOG_LEVEL": "ERROR",
    }
    done = subprocess.run(
        [executable, "-I", "-S", "-c", IMPORT_CHECK, str(task), str(site), str(opt / "python")],
        cwd=task,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"] == 42
    assert result["tracer"] == "CTracer"
    assert Path(result["coverage"]).is_relative_to(site)
    assert Path(result["wrapper"]).is_relative_to(opt / "python")


def test_the_combiner_bundle_is_a_function_zip_for_one_platform(combiner_bundle: Bundle) -> None:
    names = combiner_bundle.names()
    assert "coverage_combiner/lambda_handler.py" in names
    platform = LambdaPlatform("3.13", "arm64")
    assert platform.tracer_file in names
    assert [n for n in names if n.endswith(".so")] == [platform.tracer_file]
    assert not any(n.startswith(("python/", "boto3/")) for n in names)
    # The combiner reads keys through the wrapper's key contract.
    assert {"coverage_wrapper/__init__.py", "coverage_wrapper/keys.py"} <= set(names)


def test_build_layer_writes_the_zips_and_a_manifest(
    layer_bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    output = tmp_path / "dist"
    assert build_layer.main(["--output", str(output)]) == build_layer.EXIT_OK
    manifest = json.loads((output / "build.json").read_text())
    assert [entry["architecture"] for entry in manifest] == ["arm64", "x86_64"]
    for entry in manifest:
        bundle = layer_bundles[entry["architecture"]]
        assert (output / entry["file"]).read_bytes() == bundle.path.read_bytes()
        assert entry["fingerprint"] == bundle.fingerprint
        assert sorted(entry["pythons"]) == list(SUPPORTED_PYTHONS)
    assert build_layer.main(["--output", str(output), "--python", "2.7"]) == build_layer.EXIT_USAGE


def test_platform_tags_stop_at_the_runtime_images_glibc() -> None:
    amazon_linux_2 = LambdaPlatform("3.11", "x86_64").platform_tags()
    assert amazon_linux_2[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_27_x86_64" not in amazon_linux_2
    assert {"manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64"} <= set(
        amazon_linux_2
    )
    amazon_linux_2023 = LambdaPlatform("3.12", "arm64").platform_tags()
    assert amazon_linux_2023[0] == "manylinux_2_34_aarch64"
    assert all(tag.endswith("_aarch64") for tag in amazon_linux_2023)


def test_only_a_wheel_compiled_for_the_platform_fits() -> None:
    platform = LambdaPlatform("3.12", "x86_64")
    fits = (
        "coverage-7.17.4-cp312-cp312-manylinux1_x86_64.manylinux_2_28_x86_64."
        "manylinux_2_5_x86_64.whl"
    )
    assert wheel_fits(fits, platform)
    for other in (
        "coverage-7.17.4-py3-none-any.whl",
        "coverage-7.17.4-cp313-cp313-manylinux_2_28_x86_64.whl",
        "coverage-7.17.4-cp312-cp312-manylinux_2_28_aarch64.whl",
        "coverage-7.17.4-cp312-cp312-macosx_11_0_arm64.whl",
        "coverage-7.17.4-cp312-cp312-manylinux_2_39_x86_64.whl",
    ):
        assert not wheel_fits(other, platform), other
    with pytest.raises(LayerBuildError, match="is not a wheel file name"):
        wheel_fits("coverage-7.17.4.tar.gz", platform)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pythons": ()}, "at least one Python version"),
        ({"pythons": ("3.12", "3.12")}, "listed twice"),
        ({"pythons": ("3.9",)}, r"Python '3.9' is not one of the Lambda runtimes"),
        ({"architecture": "ppc64le"}, r"architecture 'ppc64le' is not a Lambda architecture"),
        ({"layout": "function", "pythons": ("3.12", "3.13")}, "for one Python version"),
        ({"coverage_versions": {"3.13": "7.17.4"}}, "no coverage.py version given for Python 3.12"),
    ],
)
def test_bad_specs_are_refused_with_the_fix(settings: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "layout": "layer",
        "architecture": "x86_64",
        "pythons": ("3.12",),
        "packages": (),
    }
    with pytest.raises(LayerBuildError, match=message):
        BundleSpec(**(base | settings))  # type: ignore[arg-type]


def test_a_wheel_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("evil/__init__.py", "")
        archive.writestr("../escape.py", "")
    with pytest.raises(LayerBuildError, match=r"'../escape.py' would be written outside"):
        unpack_wheel(wheel, tmp_path / "site")
    assert not (tmp_path / "escape.py").exists()


def test_write_zip_keeps_executables_executable(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "extensions").mkdir(parents=True)
    (tree / "extensions" / "uploader").write_text("#!/bin/sh\n")
    (tree / "extensions" / "uploader").chmod(0o755)
    (tree / "python").mkdir()
    (tree / "python" / "m.py").write_text("")
    write_zip(tree, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert modes == {"extensions/uploader": 0o100755, "python/m.py": 0o100644}
