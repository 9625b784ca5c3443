"""Build a Lambda zip (a layer or a function's code) from our packages and coverage.py wheels.

The one builder behind :class:`~coverage_cdk_constructs.CoverageLayer`,
:class:`~coverage_cdk_constructs.CoverageCombiner` and the publishing of the
layer. It runs locally, without Docker:

- our pure-Python packages are copied from their source folder (in this
  repository) or unpacked from their released wheel (when the constructs are
  installed from the package index);
- coverage.py is unpacked from the wheel built for each Lambda platform, and
  its compiled tracer is checked to be there;
- ``__pycache__``, ``*.pyc`` and ``tests`` folders of the inputs are left
  out, and boto3 is not bundled (the runtime has it); then each target Python
  installed here compiles checked-hash bytecode into ``__pycache__``
  (:mod:`~coverage_cdk_constructs.bytecode`), so that a cold start does not
  compile from source on a read-only ``/opt``;
- the zip is deterministic (sorted entries, fixed timestamps and modes), and
  its name is a fingerprint of the inputs, so the same inputs give the same
  asset hash and never cause a redeployment.

Layouts: ``"layer"`` puts packages under ``python/`` and coverage.py under
``python/lib/python3.X/site-packages/`` for every Python version (Lambda puts
both on ``sys.path``), and extensions under ``extensions/``: the wrapper's
own (``extensions/lambda-coverage``, laid out by the wrapper's
``install_extension``, the same call the local runtime's layer uses) whenever
the layer carries the wrapper, and any others the spec lists. ``"function"`` puts
everything at the root of the zip, for one Python version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Final, Literal

from coverage_cdk_constructs.bytecode import Interpreter, compile_tree, find_interpreters
from coverage_cdk_constructs.errors import LayerBuildError
from coverage_cdk_constructs.lambda_platform import (
    DEFAULT_COVERAGE_VERSIONS,
    LambdaPlatform,
)
from coverage_cdk_constructs.wheels import fetch_wheel, unpack_wheel, wheel_members
from coverage_wrapper.extension import install_extension

#: Changes whenever the builder lays files out differently (it is part of every fingerprint).
BUILDER_FORMAT: Final = "3"
#: Lambda's limits: 50 MB for a zip uploaded directly, 250 MB unzipped (function + layers).
MAX_ZIPPED_BYTES: Final = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES: Final = 250 * 1024 * 1024
#: Set on every zip entry: zip extraction loses timestamps anyway, and a fixed
#: one keeps the bytes (and the hash) of two builds the same.
ZIP_TIMESTAMP: Final = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "tests", "test"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo")
ENV_CACHE_DIR: Final = "LAMBDA_COVERAGE_CACHE_DIR"

Layout = Literal["layer", "function"]
#: Where Lambda puts each layout's files: the names code objects record.
RECORDED_ROOTS: Final = MappingProxyType(
    {"layer": PurePosixPath("/opt"), "function": PurePosixPath("/var/task")}
)


@dataclass(frozen=True)
class SourcePackage:
    """A pure-Python package copied from a source folder (the folder of its ``__init__.py``)."""

    import_name: str
    path: Path

    def files(self) -> list[Path]:
        """The package's files to ship, relative to :attr:`path`, sorted."""
        if not (self.path / "__init__.py").is_file():
            raise LayerBuildError(
                f"{self.path} is not the source folder of the package {self.import_name!r} "
                "(no __init__.py there)"
            )
        return sorted(p.relative_to(self.path) for p in _shipped_files(self.path))


@dataclass(frozen=True)
class PublishedPackage:
    """A pure-Python package unpacked from its released wheel on the package index."""

    project: str
    version: str


Package = SourcePackage | PublishedPackage


@dataclass(frozen=True)
class BundleSpec:
    """What goes into one zip.

    :param layout: ``"layer"`` or ``"function"`` (see the module's docstring).
    :param architecture: ``"x86_64"`` or ``"arm64"`` (``lambda_.Architecture.*.name``).
    :param pythons: Python versions to carry coverage.py for; one for a function.
    :param packages: our packages to include.
    :param coverage_versions: coverage.py release per Python version.
    :param extensions: executables for the layer's ``extensions/`` folder.
    :param bytecode: ship checked-hash ``.pyc`` compiled by each of ``pythons``
        installed on this machine (the others are skipped and named).
    """

    layout: Layout
    architecture: str
    pythons: tuple[str, ...]
    packages: tuple[Package, ...]
    coverage_versions: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_COVERAGE_VERSIONS))
    )
    extensions: tuple[Path, ...] = ()
    bytecode: bool = True

    def __post_init__(self) -> None:
        if not self.pythons:
            raise LayerBuildError("a bundle needs at least one Python version")
        if len(set(self.pythons)) != len(self.pythons):
            raise LayerBuildError(f"Python versions listed twice: {self.pythons}")
        if self.layout == "function" and len(self.pythons) != 1:
            raise LayerBuildError(
                f"a function bundle is for one Python version, not {list(self.pythons)}"
            )
        if self.layout == "function" and self.extensions:
            raise LayerBuildError("extensions belong in a layer, not in a function bundle")
        for python in self.pythons:
            LambdaPlatform(python, self.architecture)  # validates both
            if python not in self.coverage_versions:
                raise LayerBuildError(
                    f"no coverage.py version given for Python {python}: "
                    f"add it to coverage_versions (defaults: {dict(DEFAULT_COVERAGE_VERSIONS)})"
                )

    @property
    def platforms(self) -> tuple[LambdaPlatform, ...]:
        """One Lambda platform per Python version, in order."""
        return tuple(LambdaPlatform(p, self.architecture) for p in self.pythons)

    def interpreters(self) -> dict[str, Interpreter | None]:
        """Per Python version, the interpreter that compiles its bytecode (None: skipped)."""
        if not self.bytecode:
            return dict.fromkeys(self.pythons)
        return find_interpreters(self.pythons)

    def fingerprint(self, interpreters: Mapping[str, Interpreter | None] | None = None) -> str:
        """A hash of every input: equal fingerprints mean equal zips.

        The inputs include the exact version of each interpreter that compiles
        bytecode (default: :meth:`interpreters`), since the ``.pyc`` bytes
        depend on it.
        """
        compilers = self.interpreters() if interpreters is None else interpreters
        digest = hashlib.sha256()

        def add(*parts: str | bytes) -> None:
            for part in parts:
                data = part.encode() if isinstance(part, str) else part
                digest.update(len(data).to_bytes(8, "big"))
                digest.update(data)

        add("builder", BUILDER_FORMAT, "layout", self.layout, "arch", self.architecture)
        for python in self.pythons:
            add("python", python, "coverage", self.coverage_versions[python])
            compiler = compilers.get(python)
            add("bytecode", compiler.identity() if compiler else "none")
        for package in self.packages:
            if isinstance(package, PublishedPackage):
                add("published", package.project, package.version)
                continue
            add("source", package.import_name)
            for relative in package.files():
                add(relative.as_posix(), (package.path / relative).read_bytes())
        for extension in self.extensions:
            add("extension", extension.name, extension.read_bytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A built zip and what it is."""

    spec: BundleSpec
    path: Path
    fingerprint: str
    #: The Python versions whose bytecode is not in the zip (not installed here).
    bytecode_skipped: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Bytes of the zip."""
        return self.path.stat().st_size

    def unzipped_size(self) -> int:
        """Bytes of the files once Lambda has extracted the zip."""
        with zipfile.ZipFile(self.path) as archive:
            return sum(info.file_size for info in archive.infolist())

    def names(self) -> list[str]:
        """The entries of the zip, in order."""
        with zipfile.ZipFile(self.path) as archive:
            return archive.namelist()


def default_cache_dir() -> Path:
    """Where wheels and built zips are kept between builds.

    ``$LAMBDA_COVERAGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lambda-coverage``,
    else ``~/.cache/lambda-coverage``.
    """
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lambda-coverage"


def build_bundle(spec: BundleSpec, *, cache_dir: Path | None = None) -> Bundle:
    """Build the zip for ``spec`` (or reuse the one built from the same inputs)."""
    cache = cache_dir or default_cache_dir()
    interpreters = spec.interpreters()
    fingerprint = spec.fingerprint(interpreters)
    skipped = tuple(p for p, i in interpreters.items() if i is None) if spec.bytecode else ()
    target = cache / "bundles" / f"{spec.layout}-{spec.architecture}-{fingerprint[:32]}.zip"
    if target.is_file():
        return Bundle(spec, target, fingerprint, skipped)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-bundle-") as scratch:
        tree = Path(scratch) / "tree"
        lay_out(spec, tree, cache=cache, interpreters=interpreters)
        partial = Path(scratch) / "bundle.zip"
        write_zip(tree, partial)
        _check_size(partial, spec)
        # Another process may have built the same inputs: identical bytes, so either wins.
        shutil.copyfile(partial, target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)
    return Bundle(spec, target, fingerprint, skipped)


def lay_out(
    spec: BundleSpec,
    root: Path,
    *,
    cache: Path,
    interpreters: Mapping[str, Interpreter | None] | None = None,
) -> None:
    """Write the files of ``spec`` into the folder ``root``, as they will be unzipped.

    :param interpreters: who compiles each Python's bytecode (default:
        :meth:`BundleSpec.interpreters`).
    """
    packages_dir = root / "python" if spec.layout == "layer" else root
    for package in spec.packages:
        _install_package(package, packages_dir, cache)
    if spec.layout == "layer":
        install_extension(root)
    for platform in spec.platforms:
        site_packages = root / platform.site_packages if spec.layout == "layer" else root
        wheel = fetch_wheel("coverage", spec.coverage_versions[platform.python], platform, cache)
        if platform.tracer_file not in wheel_members(wheel):
            raise LayerBuildError(
                f"{wheel.name} has no {platform.tracer_file}: coverage.py would fall back to "
                "its slow Python tracer on this runtime"
            )
        unpack_wheel(wheel, site_packages)
    for extension in spec.extensions:
        destination = root / "extensions" / extension.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(extension, destination)
        destination.chmod(0o755)
    _strip(root)
    compile_tree(
        root,
        spec.interpreters() if interpreters is None else interpreters,
        recorded_root=RECORDED_ROOTS[spec.layout],
    )


def _install_package(package: Package, destination: Path, cache: Path) -> None:
    if isinstance(package, PublishedPackage):
        unpack_wheel(fetch_wheel(package.project, package.version, None, cache), destination)
        return
    for relative in package.files():
        target = destination / package.import_name / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package.path / relative, target)


def _shipped_files(folder: Path) -> Iterator[Path]:
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(_SKIPPED_SUFFIXES):
                yield Path(current) / name


def _strip(root: Path) -> None:
    for current, dirs, files in os.walk(root, topdown=True):
        for name in [d for d in dirs if d in _SKIPPED_DIRS]:
            shutil.rmtree(Path(current) / name)
            dirs.remove(name)
        for name in files:
            if name.endswith(_SKIPPED_SUFFIXES):
                (Path(current) / name).unlink()


def write_zip(tree: Path, destination: Path) -> None:
    """Zip ``tree`` deterministically: sorted entries, fixed timestamps and modes."""
    entries = sorted(p.relative_to(tree).as_posix() for p in _all_files(tree))
    with zipfile.ZipFile(destination, "w") as archive:
        for name in entries:
            source = tree / name
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that Lambda honours the mode bits below
            executable = bool(source.stat().st_mode & stat.S_IXUSR)
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            archive.writestr(info, source.read_bytes(), compresslevel=9)


def _all_files(tree: Path) -> Iterable[Path]:
    return (p for p in tree.rglob("*") if p.is_file())


def _check_size(zip_path: Path, spec: BundleSpec) -> None:
    zipped = zip_path.stat().st_size
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    if zipped > MAX_ZIPPED_BYTES or unzipped > MAX_UNZIPPED_BYTES:
        raise LayerBuildError(
            f"the {spec.layout} for {spec.architecture} is {zipped / 1e6:.1f} MB zipped and "
            f"{unzipped / 1e6:.1f} MB unzipped, over Lambda's 50 MB / 250 MB limits: "
            "carry fewer Python versions"
        )
