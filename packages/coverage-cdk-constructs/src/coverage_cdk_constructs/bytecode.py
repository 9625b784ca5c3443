"""Checked-hash bytecode for a bundle, compiled by each target Python that is installed here.

``/opt`` is read-only on Lambda, so a layer without bytecode makes every cold
start compile the wrapper and coverage.py from source. A ``.pyc`` must be
written by the Python version that loads it (its magic number and cache tag
say which), so each target Python compiles its own files, in a process of
its own; a version not installed on this machine is skipped and named.

Checked-hash ``.pyc`` files (PEP 552) hold a hash of their source instead of
its timestamp: they are the same bytes on every build (no timestamps, which
zip extraction loses anyway), and the interpreter still checks them against
the source, so a stale one is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from coverage_cdk_constructs.errors import LayerBuildError

COMPILE_TIMEOUT_SECONDS: Final = 300

#: Run by the target interpreter: compiles (source, recorded name) pairs read from stdin.
_COMPILER: Final = """
import json, py_compile, sys
mode = py_compile.PycInvalidationMode.CHECKED_HASH
for source, recorded in json.load(sys.stdin):
    py_compile.compile(source, dfile=recorded, doraise=True, invalidation_mode=mode)
"""


@dataclass(frozen=True)
class Interpreter:
    """A Python installed on this machine that can compile for one target version."""

    python: str
    executable: Path

    def identity(self) -> str:
        """The interpreter's full version: bytecode depends on it, so builds record it."""
        done = _run([str(self.executable), "-s", "-c", "import sys; print(sys.version)"])
        return done.stdout.strip()


def find_interpreter(python: str) -> Interpreter | None:
    """An interpreter of version ``python`` (``"3.12"``) on this machine, or None.

    This process's own when it is that version, else pyenv's newest
    ``3.X.*`` (``$PYENV_ROOT`` or ``~/.pyenv``), else ``python3.X`` on the
    ``PATH`` (not a pyenv shim, which may point at no installed version).
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return Interpreter(python, Path(sys.executable))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(
        pyenv_root.glob(f"versions/{python}.*/bin/python{python}"),
        key=lambda p: _patch_level(p.parents[1].name),
    )
    if installed:
        return Interpreter(python, installed[-1])
    found = shutil.which(f"python{python}")
    if found and "/shims/" not in found:
        return Interpreter(python, Path(found))
    return None


def _patch_level(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def find_interpreters(pythons: Sequence[str]) -> dict[str, Interpreter | None]:
    """:func:`find_interpreter` for each version, in order."""
    return {python: find_interpreter(python) for python in pythons}


def compile_tree(
    root: Path,
    interpreters: Mapping[str, Interpreter | None],
    *,
    recorded_root: PurePosixPath,
) -> None:
    """Write checked-hash ``__pycache__`` files for every ``.py`` under ``root``.

    Each available interpreter compiles the files it can import: everything
    except another version's ``lib/python3.Y/site-packages``. Code objects
    name their file under ``recorded_root`` (``/opt`` for a layer), where
    Lambda puts it, not under this build's scratch folder, so the bytes do
    not depend on where the build ran.
    """
    sources = sorted(p for p in root.rglob("*.py") if p.is_file())
    for python, interpreter in interpreters.items():
        if interpreter is None:
            continue
        mine = [p for p in sources if _importable_by(p.relative_to(root), python)]
        pairs = [(str(p), str(recorded_root / p.relative_to(root).as_posix())) for p in mine]
        _run([str(interpreter.executable), "-s", "-c", _COMPILER], stdin=json.dumps(pairs))


def _importable_by(relative: Path, python: str) -> bool:
    parts = relative.parts
    for index, part in enumerate(parts[:-1]):
        if part == "lib" and index + 1 < len(parts) - 1 and parts[index + 1].startswith("python"):
            return parts[index + 1] == f"python{python}"
    return True


def _run(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            command,
            # A fixed hash seed: the order in which a frozenset constant
            # (``x in {"a", "b"}``) is marshalled follows the strings' hashes.
            # A minimal environment: no PYTHONPATH or other PYTHON* setting.
            env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LayerBuildError(
            f"{command[0]} could not compile the bundle's bytecode ({error}): "
            "repair or remove that interpreter"
        ) from error
    if done.returncode != 0:
        detail = " / ".join(done.stderr.strip().splitlines()[-3:])
        raise LayerBuildError(
            f"{command[0]} failed to compile the bundle's bytecode: {detail} "
            "(a file that this Python cannot compile has no place in its layer)"
        )
    return done
