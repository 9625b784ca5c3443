"""Layers as the local runtime mounts them: a folder standing in for ``/opt``.

Lambda extracts a function's layers into ``/opt``: ``/opt/python`` is on the
runtime's ``sys.path`` and every executable in ``/opt/extensions`` is started
as an external extension. A :class:`Layer` is such a folder on this machine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from coverage_wrapper.extension import install_extension


@dataclass(frozen=True)
class Layer:
    """A folder laid out like ``/opt``."""

    root: Path

    @property
    def python_dir(self) -> Path:
        """What Lambda puts on the path as ``/opt/python``."""
        return self.root / "python"

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


def build_wrapper_layer(root: Path, *, extensions: Iterable[Path] = ()) -> Layer:
    """Lay out the coverage layer under ``root``: the wrapper, its extension, any others.

    The wrapper's extension goes to ``extensions/lambda-coverage`` exactly as
    in the shipped layer (:func:`coverage_wrapper.extension.install_extension`).
    coverage.py and boto3 are not copied: the runtime's own interpreter has
    them, as the Lambda runtime has boto3 (and the published layer carries
    coverage.py built for the Lambda platform).
    """
    layer = Layer(root)
    layer.python_dir.mkdir(parents=True, exist_ok=True)
    target = layer.python_dir / "coverage_wrapper"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        wrapper_source_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    install_extension(layer.root)
    add_extensions(layer, extensions)
    return layer


def add_extensions(layer: Layer, executables: Iterable[Path]) -> None:
    """Copy executables into the layer's ``extensions/`` folder, keeping them executable."""
    for source in executables:
        layer.extensions_dir.mkdir(parents=True, exist_ok=True)
        destination = layer.extensions_dir / source.name
        shutil.copyfile(source, destination)
        mode = destination.stat().st_mode
        destination.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
