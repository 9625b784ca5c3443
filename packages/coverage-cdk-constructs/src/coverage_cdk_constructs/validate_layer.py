"""``lambda-coverage-layer validate ZIP...``: is a layer zip fit to publish?

Read from the zip alone: the layout (``python/`` with the wrapper and the
combiner, ``python/lib/python3.X/site-packages/`` with coverage.py,
``extensions/lambda-coverage`` executable), Lambda's size limits, coverage.py's
compiled tracer per Python (the wheel's tags and the shared object's CPU),
checked-hash bytecode only where it belongs, and nothing else: no boto3 (the
runtime has its own), no tests, no caches, no file outside the layout.

Then run from the unzipped layer, where this machine can (its architecture,
a Python the layer carries): the wrapper and the combiner import with the
compiled tracer, coverage.py starts, no module is compiled from source when
the layer carries bytecode for that Python, and the extension starts from
its own folder and asks for the Extensions API.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform as host
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from packaging.tags import parse_tag

from coverage_cdk_constructs.bundle import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES
from coverage_cdk_constructs.cli import EXIT_FAILED, EXIT_OK
from coverage_cdk_constructs.lambda_platform import MACHINES, SUPPORTED_PYTHONS, LambdaPlatform
from coverage_wrapper.constants import EXTENSION_NAME
from coverage_wrapper.extension import LAUNCHER_FILE
from coverage_wrapper.untrusted_text import terminal_text

ProblemKind = Literal["zip", "size", "layout", "forbidden", "tracer", "bytecode", "run"]

#: Our packages, directly under ``python/``.
LAYER_PACKAGES: Final = ("coverage_wrapper", "coverage_combiner")
#: What the runtime provides and a layer must not shadow.
RUNTIME_PACKAGES: Final = frozenset({"boto3", "botocore", "s3transfer"})
#: What coverage.py's wheel puts directly in site-packages (besides its dist-info).
#: Lambda puts a layer's folders on ``PYTHONPATH``, which processes no ``.pth``
#: files, so ``a1_coverage.pth`` (measuring subprocesses when asked) is inert.
_COVERAGE_FILES: Final = frozenset({"coverage", "a1_coverage.pth"})
_TEST_DIRS: Final = frozenset({"tests", "test"})
_ELF_MACHINES: Final = {0x3E: "x86_64", 0xB7: "aarch64"}
_SITE_PACKAGES: Final = re.compile(r"python/lib/python(3\.\d+)/site-packages/")
_PYC: Final = re.compile(r"(?P<stem>[^/.]+)\.cpython-(?P<tag>3\d+)\.pyc")
_TRACER: Final = re.compile(r"coverage/tracer\.[^/]*\.so")
#: The header flags of a checked-hash ``.pyc`` (PEP 552): hash-based, check the source.
_CHECKED_HASH_FLAGS: Final = 0b11
RUN_TIMEOUT_SECONDS: Final = 120


@dataclass(frozen=True)
class Problem:
    """One reason a zip is not fit to publish."""

    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class Validation:
    """What validating one zip found: problems fail it, notes say what was not checked."""

    path: Path
    architecture: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the zip passed every check."""
        return not self.problems

    def fail(self, kind: ProblemKind, message: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(kind, message))


def validate_layer(
    path: Path,
    *,
    architecture: str | None = None,
    max_zipped: int = MAX_ZIPPED_BYTES,
    max_unzipped: int = MAX_UNZIPPED_BYTES,
    run: bool = True,
) -> Validation:
    """Check the layer zip at ``path`` (see the module's docstring).

    :param architecture: ``"x86_64"`` or ``"arm64"``; default: from the file
        name (``lambda-coverage-layer-arm64.zip``), else from the tracers.
    :param max_zipped: the limit on the zip's size (Lambda's direct upload: 50 MB).
    :param max_unzipped: the limit on the files' size (Lambda's: 250 MB).
    :param run: also import and start the layer's code where this machine can.
    """
    result = Validation(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        result.fail("zip", f"{path} cannot be read as a zip ({error})")
        return result
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        names = {i.filename for i in infos}
        _check_size(
            result, path.stat().st_size, sum(i.file_size for i in infos), max_zipped, max_unzipped
        )
        pythons = _check_entries(result, infos, names)
        _check_extension(result, archive, names)
        found = architecture or _architecture(path, names)
        if found is None or found not in MACHINES:
            result.fail(
                "tracer", f"cannot tell the architecture of {path.name}: pass --architecture"
            )
            return result
        result.architecture = found
        for python in pythons:
            _check_tracer(result, archive, names, LambdaPlatform(python, found))
        _check_bytecode(result, archive, infos, names)
        if run and not result.problems:
            _run_from_unzipped(result, archive, pythons)
    return result


def _check_size(
    result: Validation, zipped: int, unzipped: int, max_zipped: int, max_unzipped: int
) -> None:
    if zipped > max_zipped:
        result.fail(
            "size",
            f"the zip is {zipped:,} bytes, over the {max_zipped:,}-byte limit of a direct "
            "upload: carry fewer Python versions",
        )
    if unzipped > max_unzipped:
        result.fail(
            "size",
            f"the files are {unzipped:,} bytes unzipped, over Lambda's {max_unzipped:,}-byte "
            "limit (function and layers together): carry fewer Python versions",
        )


def _check_entries(
    result: Validation, infos: Iterable[zipfile.ZipInfo], names: set[str]
) -> list[str]:
    """Every entry where the layout puts it; the Python versions that have a site-packages."""
    pythons: set[str] = set()
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts:
            result.fail("forbidden", f"{name}: would be extracted outside the layer's folder")
            continue
        runtime = RUNTIME_PACKAGES.intersection(p.split("-")[0] for p in parts)
        if runtime:
            result.fail(
                "forbidden",
                f"{name}: {min(runtime)} belongs to the Lambda runtime; a layer copy would "
                "shadow it (leave it out)",
            )
        elif _TEST_DIRS.intersection(parts[:-1]):
            result.fail("forbidden", f"{name}: tests do not belong in the layer")
        elif any(p.startswith(".") for p in parts) or (
            name.endswith((".pyo", ".pyc")) and "__pycache__" not in parts
        ):
            result.fail("forbidden", f"{name}: a cache or hidden file (leave it out)")
        elif not _in_layout(name, parts, pythons):
            result.fail(
                "layout",
                f"{name}: outside the layer's layout (python/{{{','.join(LAYER_PACKAGES)}}}/, "
                "python/lib/python3.X/site-packages/coverage*, extensions/)",
            )
    for package in LAYER_PACKAGES:
        if f"python/{package}/__init__.py" not in names:
            result.fail("layout", f"python/{package}/__init__.py is missing")
    if not pythons:
        result.fail(
            "layout", "no python/lib/python3.X/site-packages/coverage: coverage.py is missing"
        )
    return sorted(pythons, key=SUPPORTED_PYTHONS.index)


def _in_layout(name: str, parts: tuple[str, ...], pythons: set[str]) -> bool:
    if parts[0] == "extensions":
        return len(parts) == 2
    if parts[0] != "python" or len(parts) < 3:
        return False
    if parts[1] in LAYER_PACKAGES:
        return True
    site = _SITE_PACKAGES.match(name)
    if site is None or site.group(1) not in SUPPORTED_PYTHONS:
        return False
    top = parts[4]
    if top in _COVERAGE_FILES or (top.startswith("coverage-") and top.endswith(".dist-info")):
        pythons.add(site.group(1))
        return True
    return False


def _check_extension(result: Validation, archive: zipfile.ZipFile, names: set[str]) -> None:
    name = f"extensions/{EXTENSION_NAME}"
    if name not in names:
        result.fail("layout", f"{name} is missing: the layer would upload in the call")
        return
    info = archive.getinfo(name)
    if info.create_system != 3 or (info.external_attr >> 16) & 0o111 != 0o111:
        result.fail(
            "layout",
            f"{name} is not executable once unzipped (mode bits): Lambda would not start it",
        )
    launcher = f"python/coverage_wrapper/{LAUNCHER_FILE}"
    if launcher in names and archive.read(name) != archive.read(launcher):
        result.fail(
            "layout", f"{name} differs from {launcher}: rebuild so both come from one release"
        )


def _architecture(path: Path, names: set[str]) -> str | None:
    for architecture in MACHINES:
        if path.name.endswith(f"-{architecture}.zip"):
            return architecture
    machines = {m for n in names for m in MACHINES.values() if _TRACER.search(n) and f"-{m}-" in n}
    if len(machines) == 1:
        (machine,) = machines
        return next(a for a, m in MACHINES.items() if m == machine)
    return None


def _check_tracer(
    result: Validation, archive: zipfile.ZipFile, names: set[str], platform: LambdaPlatform
) -> None:
    site = platform.site_packages
    where = f"Python {platform.python} on {platform.architecture}"
    tracer = f"{site}/{platform.tracer_file}"
    shared = sorted(n for n in names if n.startswith(f"{site}/coverage/") and n.endswith(".so"))
    for other in (n for n in shared if n != tracer):
        result.fail("tracer", f"{other}: not the tracer of {where} (expected {tracer})")
    if tracer not in names:
        result.fail(
            "tracer",
            f"{tracer} is missing: coverage.py would fall back to its slow Python tracer "
            f"on {where}",
        )
    else:
        head = archive.read(tracer)[:20]
        machine = (
            _ELF_MACHINES.get(int.from_bytes(head[18:20], "little"))
            if head[:4] == b"\x7fELF"
            else None
        )
        if machine != platform.machine:
            result.fail(
                "tracer",
                f"{tracer} is compiled for {machine or 'no known CPU'}, not {platform.machine}",
            )
    wheels = [
        n for n in names if n.startswith(f"{site}/coverage-") and n.endswith(".dist-info/WHEEL")
    ]
    if len(wheels) != 1:
        result.fail(
            "tracer", f"{site}: expected one coverage-*.dist-info/WHEEL, found {len(wheels)}"
        )
        return
    lines = archive.read(wheels[0]).decode().splitlines()
    tags = [
        t
        for line in lines
        if line.startswith("Tag: ")
        for t in parse_tag(line.removeprefix("Tag: "))
    ]
    wrong = sorted(str(t) for t in tags if t.interpreter != platform.abi or t.abi != platform.abi)
    if not tags or wrong:
        result.fail(
            "tracer",
            f"{wheels[0]}: tags {wrong or 'none'} are not "
            f"{platform.abi}-{platform.abi} for {where}",
        )
    if not {t.platform for t in tags} & set(platform.platform_tags()):
        result.fail(
            "tracer",
            f"{wheels[0]}: no platform tag among {sorted({t.platform for t in tags})} "
            f"loads on {where} "
            f"(glibc 2.{platform.glibc_minor}, {platform.machine})",
        )


def _check_bytecode(
    result: Validation, archive: zipfile.ZipFile, infos: Iterable[zipfile.ZipInfo], names: set[str]
) -> None:
    here = f"{sys.version_info.major}{sys.version_info.minor}"
    for info in infos:
        path = PurePosixPath(info.filename)
        if path.parent.name != "__pycache__":
            continue
        pyc = _PYC.fullmatch(path.name)
        source = path.parent.parent / f"{pyc.group('stem')}.py" if pyc else None
        if pyc is None or source is None or str(source) not in names:
            result.fail("bytecode", f"{path}: bytecode without its source (leave it out)")
            continue
        tag = f"{pyc.group('tag')[0]}.{pyc.group('tag')[1:]}"
        site = _SITE_PACKAGES.match(info.filename)
        if tag not in SUPPORTED_PYTHONS or (site is not None and site.group(1) != tag):
            result.fail(
                "bytecode", f"{path}: bytecode for Python {tag}, which cannot import it here"
            )
            continue
        data = archive.read(info)
        if int.from_bytes(data[4:8], "little") != _CHECKED_HASH_FLAGS:
            result.fail(
                "bytecode",
                f"{path}: not checked-hash bytecode (timestamps do not survive unzipping, so it "
                "would be stale or ignored): rebuild the layer",
            )
        elif pyc.group("tag") == here and (
            data[:4] != importlib.util.MAGIC_NUMBER
            or data[8:16] != importlib.util.source_hash(archive.read(str(source)))
        ):
            result.fail("bytecode", f"{path}: does not match {source}: rebuild the layer")


#: Run in the unzipped layer by this machine's Python, as a function's runtime would.
#: The zero-code handler measures a one-line function with the compiled tracer.
_RUN_CHECK: Final = """
import json, sys, types
sys.path.insert(0, sys.argv[1])
import coverage
from coverage.tracer import CTracer
import coverage_wrapper.handler as zero_code
import coverage_combiner
from coverage_wrapper.combiner import combine_coverage_files
answer = zero_code.handler({"n": 2}, types.SimpleNamespace(aws_request_id="validate"))
assert answer == 42, answer
print(json.dumps({"coverage": coverage.__file__, "wrapper": zero_code.__file__,
                  "combiner": coverage_combiner.__file__}))
"""
_RUN_HANDLER: Final = "def handler(event, context):\n    return event['n'] * 21\n"


def _run_from_unzipped(
    result: Validation, archive: zipfile.ZipFile, pythons: Sequence[str]
) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    architecture = result.architecture
    if architecture is None or MACHINES[architecture] != host.machine():
        result.notes.append(f"not run: this machine is {host.machine()}, the layer {architecture}")
        return
    if here not in pythons:
        result.notes.append(f"not run: the layer carries no coverage.py for this Python ({here})")
        return
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-validate-") as scratch:
        opt = Path(scratch) / "opt"
        _extract(archive, opt)
        site = opt / LambdaPlatform(here, architecture).site_packages
        task = Path(scratch) / "task"
        task.mkdir()
        (task / "app.py").write_text(_RUN_HANDLER)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(opt / "python"), str(site)]),
            # /opt is read-only on Lambda: a module without bytecode compiles every cold start.
            "PYTHONDONTWRITEBYTECODE": "1",
            "COVERAGE_SPOOL_DIR": str(Path(scratch) / "spool"),
            "COVERAGE_LOG_LEVEL": "ERROR",
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_LAMBDA_FUNCTION_NAME": "lambda-coverage-validate",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "COVERAGE_ORIGINAL_HANDLER": "app.handler",
        }
        done = _python(["-s", "-v", "-c", _RUN_CHECK, str(task)], env, cwd=scratch)
        if done is None or done.returncode != 0:
            detail = "timed out" if done is None else _error(done.stderr)
            result.fail(
                "run",
                f"the wrapper does not import from the unzipped layer on Python {here}: {detail}",
            )
            return
        where = json.loads(done.stdout.strip().splitlines()[-1])
        for module, file in sorted(where.items()):
            if not Path(file).is_relative_to(opt):
                result.fail("run", f"{module} was imported from {file}, not from the layer")
        has_bytecode = any(
            p.name.endswith(f".cpython-{here.replace('.', '')}.pyc") for p in opt.rglob("*.pyc")
        )
        compiled = sorted(
            source
            for source in _compiled_from_source(done.stderr)
            if Path(source).is_relative_to(opt)
        )
        if has_bytecode and compiled:
            result.fail(
                "run",
                "compiled from source at start although the layer carries bytecode: "
                + ", ".join(compiled),
            )
        started = _python(
            [str(opt / "extensions" / EXTENSION_NAME)], {**env, "PYTHONPATH": ""}, cwd=scratch
        )
        if (
            started is None
            or started.returncode != 1
            or "AWS_LAMBDA_RUNTIME_API is not set" not in started.stdout
        ):
            detail = (
                "timed out"
                if started is None
                else (started.stderr or started.stdout).strip()[-300:]
            )
            result.fail(
                "run",
                f"extensions/{EXTENSION_NAME} did not start from the unzipped layer: {detail}",
            )


def _compiled_from_source(verbose: str) -> list[str]:
    """The sources ``python -v`` says it compiled (a ``.pyc`` it loaded is named instead)."""
    marker = "# code object from "
    lines = verbose.splitlines()
    paths = (line.removeprefix(marker).strip("'") for line in lines if line.startswith(marker))
    return [path for path in paths if path.endswith(".py")]


def _error(stderr: str) -> str:
    """The traceback's last lines, without ``-v``'s import chatter."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("#")]
    return " / ".join(lines[-3:]) or "no output"


def _python(
    arguments: list[str], env: dict[str, str], *, cwd: str
) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            [sys.executable, *arguments],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def _extract(archive: zipfile.ZipFile, root: Path) -> None:
    """Unzip as Lambda does: the mode bits of each entry kept."""
    for info in archive.infolist():
        target = Path(archive.extract(info, root))
        mode = info.external_attr >> 16 & 0o777
        if mode and not info.is_dir():
            target.chmod(mode)


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The ``validate`` subcommand's parser."""
    parser = subparsers.add_parser(
        "validate",
        help="check layer zips before publishing them",
        description="Check layer zips: layout, size limits, the compiled tracer per Python, "
        "bytecode, nothing that does not belong, and a start from the unzipped layer.",
    )
    parser.add_argument("zips", nargs="+", type=Path, metavar="ZIP")
    parser.add_argument(
        "--architecture",
        choices=sorted(MACHINES),
        help="default: from each file name or its tracers",
    )
    parser.add_argument("--max-zipped-bytes", type=int, default=MAX_ZIPPED_BYTES)
    parser.add_argument("--max-unzipped-bytes", type=int, default=MAX_UNZIPPED_BYTES)
    parser.add_argument("--no-run", action="store_true", help="check the zips' contents only")
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate each zip of ``args``; 0 when all pass, 1 when any fails (each problem named)."""
    failed = False
    for path in args.zips:
        result = validate_layer(
            path,
            architecture=args.architecture,
            max_zipped=args.max_zipped_bytes,
            max_unzipped=args.max_unzipped_bytes,
            run=not args.no_run,
        )
        # Problems name the zip's members: their control characters are shown, not sent.
        for note in result.notes:
            print(terminal_text(f"{path}: {note}"), file=sys.stderr)
        for problem in result.problems:
            print(terminal_text(f"{path}: {problem}"), file=sys.stderr)
        if result.ok:
            print(terminal_text(f"{path}: ok ({result.architecture})"))
        failed = failed or not result.ok
    return EXIT_FAILED if failed else EXIT_OK
