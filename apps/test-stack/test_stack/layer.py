"""Layers as the local runtime mounts them: a folder standing in for ``/opt``.

Lambda extracts a function's layers into ``/opt``: ``/opt/python`` is on the
runtime's ``sys.path`` and every executable in ``/opt/extensions`` is started
as an external extension. A :class:`Layer` is such a folder on this machine,
and :func:`build_wrapper_layer` fills it with the zip that ships, built by
the one layer builder (:func:`coverage_cdk_constructs.bundled_packages.layer_spec`)
for this machine's Python and CPU and unzipped as Lambda unzips it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coverage_cdk_constructs.bundle import build_bundle
from coverage_cdk_constructs.bundled_packages import layer_spec
from coverage_cdk_constructs.bytecode import compile_tree, find_interpreters
from coverage_cdk_constructs.lambda_platform import MACHINES

_REPOSITORY = Path(__file__).resolve().parents[3]
_WRAPPER_SOURCE = "packages/coverage-wrapper/src/coverage_wrapper"


@dataclass(frozen=True)
class Layer:
    """A folder laid out like ``/opt``."""

    root: Path

    @property
    def python_dir(self) -> Path:
        """What Lambda puts on the path as ``/opt/python``."""
        return self.root / "python"

    def python_paths(self, python: str) -> list[Path]:
        """What Lambda puts on ``sys.path`` for Python ``python`` (``"3.12"``): both folders."""
        return [self.python_dir, self.root / f"python/lib/python{python}/site-packages"]

    @property
    def extensions_dir(self) -> Path:
        """Where external extensions live (``/opt/extensions``)."""
        return self.root / "extensions"

    @property
    def bin_dir(self) -> Path:
        """What Lambda puts on ``PATH`` as ``/opt/bin``."""
        return self.root / "bin"

    def extensions(self) -> list[Path]:
        """The executables Lambda would start as extensions, in name order."""
        if not self.extensions_dir.is_dir():
            return []
        return sorted(
            p
            for p in self.extensions_dir.iterdir()
            if p.is_file() and os.access(p, os.X_OK) and not p.name.startswith(".")
        )


def wrapper_source_dir() -> Path:
    """The folder of the ``coverage_wrapper`` package being developed here."""
    spec = importlib.util.find_spec("coverage_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "coverage_wrapper is not importable: run inside the development environment "
            "(hatch run ...) so the wrapper package is installed"
        )
    return Path(spec.origin).parent


def build_wrapper_layer(
    root: Path, *, extensions: Iterable[Path] = (), python: str | None = None
) -> Layer:
    """Unzip the coverage layer into ``root`` as Lambda does into ``/opt``; add any extensions.

    The zip is the one that ships (wrapper, its extension, the combiner,
    coverage.py and checked-hash bytecode), built from this checkout for
    ``python`` (default: this interpreter's version) on this machine's CPU.
    The built zip and coverage.py's wheels are cached
    (``$LAMBDA_COVERAGE_CACHE_DIR`` or ``~/.cache/lambda-coverage``), so
    only the first build asks the package index. boto3 is not in it: the
    runtime's interpreter has it, as the Lambda runtime does.
    """
    version = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    spec = layer_spec(local_architecture(), pythons=(version,), wrapper_source=wrapper_source_dir())
    bundle = build_bundle(spec)
    layer = Layer(root)
    if root.exists():
        shutil.rmtree(root)
    with zipfile.ZipFile(bundle.path) as archive:
        for info in archive.infolist():
            target = Path(archive.extract(info, root))
            # zipfile drops the mode bits that Lambda keeps (the extension is executable).
            target.chmod(info.external_attr >> 16 & 0o777 or 0o644)
    add_extensions(layer, extensions)
    return layer


def with_wrapper_of(layer: Layer, ref: str, root: Path) -> Layer:
    """A copy of ``layer`` at ``root`` whose wrapper is git revision ``ref``'s, compiled alike.

    Everything else (coverage.py, the extension's launcher) stays as built;
    the launcher runs the extension of the wrapper it finds, so that is
    ``ref``'s too. For benchmarks that compare a change in one run.
    """
    shutil.copytree(layer.root, root, symlinks=True)
    package = root / "python" / "coverage_wrapper"
    shutil.rmtree(package)
    archive = root.parent / f"{root.name}.tar"
    subprocess.run(
        ["git", "-C", str(_REPOSITORY), "archive", "--output", str(archive), ref, _WRAPPER_SOURCE],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(root.parent / f"{root.name}-src", filter="data")
    shutil.copytree(root.parent / f"{root.name}-src" / _WRAPPER_SOURCE, package)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    compile_tree(
        package,
        find_interpreters([version]),
        recorded_root=PurePosixPath("/opt/python/coverage_wrapper"),
    )
    return Layer(root)


def local_architecture() -> str:
    """This machine's CPU as a Lambda architecture (``x86_64`` or ``arm64``)."""
    machine = platform.machine()
    for architecture, name in MACHINES.items():
        if machine in (name, architecture):
            return architecture
    raise RuntimeError(
        f"this machine's CPU {machine!r} is not a Lambda architecture "
        f"({', '.join(MACHINES)}): the local runtime cannot run the layer's compiled tracer"
    )


def add_extensions(layer: Layer, executables: Iterable[Path]) -> None:
    """Copy executables into the layer's ``extensions/`` folder, keeping them executable."""
    for source in executables:
        layer.extensions_dir.mkdir(parents=True, exist_ok=True)
        destination = layer.extensions_dir / source.name
        shutil.copyfile(source, destination)
        mode = destination.stat().st_mode
        destination.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
