"""Wheels from the package index, checked and unpacked without running any code.

pip only *downloads* here (``--only-binary=:all: --no-deps``: no build, no
setup script); unpacking is plain unzipping into a folder, the way an
installer lays out a wheel's ``purelib``/``platlib`` files. Downloads are
cached by project, version and platform, so the index is asked once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Final

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from coverage_cdk_constructs.errors import LayerBuildError, WheelDownloadError
from coverage_cdk_constructs.lambda_platform import LambdaPlatform

PIP_TIMEOUT_SECONDS: Final = 300
#: Folders of a wheel's ``.data`` directory that belong in site-packages.
_LIBRARY_SCHEMES: Final = frozenset({"purelib", "platlib"})


def wheel_fits(filename: str, platform: LambdaPlatform) -> bool:
    """Whether the wheel ``filename`` is compiled for ``platform`` (a pure wheel is not).

    A clear error when ``filename`` is not a wheel's name (PEP 427).
    """
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise LayerBuildError(f"{filename!r} is not a wheel file name ({error})") from error
    loadable = set(platform.platform_tags())
    return any(
        tag.interpreter == platform.abi and tag.abi == platform.abi and tag.platform in loadable
        for tag in tags
    )


def fetch_wheel(project: str, version: str, platform: LambdaPlatform | None, cache: Path) -> Path:
    """The wheel of ``project==version`` for ``platform`` (``None``: a pure wheel), cached.

    A platform wheel must carry a compiled build for exactly that platform;
    anything else (a pure-Python fallback, another ABI) is refused.
    """
    folder = cache / "wheels" / _cache_key(project, version, platform)
    cached = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if cached:
        return cached[0]
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-pip-") as scratch:
        _pip_download(project, version, platform, Path(scratch))
        found = sorted(Path(scratch).glob("*.whl"))
        if len(found) != 1:
            raise WheelDownloadError(
                f"pip downloaded {len(found)} wheels for {project}=={version}, expected one"
            )
        wheel = found[0]
        if platform is not None and not wheel_fits(wheel.name, platform):
            raise WheelDownloadError(
                f"{wheel.name} is not built for CPython {platform.python} on "
                f"{platform.machine} Linux (glibc <= 2.{platform.glibc_minor}); "
                f"pin a {project} version that publishes such a wheel"
            )
        folder.mkdir(parents=True, exist_ok=True)
        # Another build may have cached the same wheel meanwhile: same bytes, so either wins.
        destination = folder / wheel.name
        shutil.copyfile(wheel, destination.with_suffix(".part"))
        os.replace(destination.with_suffix(".part"), destination)
        return destination


def _cache_key(project: str, version: str, platform: LambdaPlatform | None) -> str:
    where = "any" if platform is None else f"{platform.abi}-{platform.machine}"
    return f"{project}-{version}-{where}"


def _pip_download(
    project: str, version: str, platform: LambdaPlatform | None, destination: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(destination),
    ]
    if platform is not None:
        command += ["--implementation", "cp", "--python-version", platform.python]
        command += ["--abi", platform.abi]
        for tag in platform.platform_tags():
            command += ["--platform", tag]
    command.append(f"{project}=={version}")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise WheelDownloadError(
            f"pip did not download {project}=={version} within {PIP_TIMEOUT_SECONDS} s: "
            "is the package index reachable?"
        ) from error
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise WheelDownloadError(
            f"pip could not download {project}=={version}"
            + (f" for {platform.abi} {platform.machine}" if platform else "")
            + ": "
            + " / ".join(detail)
            + " (check the network and the package index, or the pinned version)"
        )


def wheel_members(wheel: Path) -> list[str]:
    """The file names inside ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def unpack_wheel(wheel: Path, site_packages: Path) -> None:
    """Lay ``wheel``'s library files out under ``site_packages``, as an installer would.

    Scripts, headers and data files are not needed in Lambda and are left out;
    nothing from the wheel is executed.
    """
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            relative = _library_path(info.filename)
            if relative is None:
                continue
            target = site_packages.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _library_path(member: str) -> PurePosixPath | None:
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts:
        raise LayerBuildError(f"wheel member {member!r} would be written outside its folder")
    first = path.parts[0]
    if first.endswith(".data"):
        if len(path.parts) > 2 and path.parts[1] in _LIBRARY_SCHEMES:
            return PurePosixPath(*path.parts[2:])
        return None
    return path
