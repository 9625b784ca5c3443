"""The Lambda platforms a bundle is built for: Python version, CPU, glibc.

Lambda runs ``python3.10`` and ``python3.11`` on Amazon Linux 2 (glibc 2.26)
and ``python3.12`` onwards on Amazon Linux 2023 (glibc 2.34). A wheel is
usable there when it is built for that CPython ABI and a ``manylinux`` tag
no newer than the image's glibc. Getting this wrong does not fail loudly:
coverage.py falls back to its pure-Python tracer, which is several times
slower, so every bundle is checked for the compiled tracer.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from coverage_cdk_constructs.errors import LayerBuildError

#: Lambda's Python runtimes that the layer carries coverage.py for.
SUPPORTED_PYTHONS: Final = ("3.10", "3.11", "3.12", "3.13", "3.14")

#: Per Python version, the newest coverage.py release that supports it.
#: Pinned so that the same inputs always build the same layer (and the
#: asset hash, hence the deployment, does not change behind your back).
DEFAULT_COVERAGE_VERSIONS: Final = MappingProxyType(
    {
        "3.10": "7.16.2",
        "3.11": "7.17.5",
        "3.12": "7.17.5",
        "3.13": "7.17.5",
        "3.14": "7.17.5",
    }
)

#: CDK architecture names (``lambda_.Architecture.X86_64.name``) to machine names in tags.
MACHINES: Final = MappingProxyType({"x86_64": "x86_64", "arm64": "aarch64"})

_AMAZON_LINUX_2_GLIBC_MINOR: Final = 26
_AMAZON_LINUX_2023_GLIBC_MINOR: Final = 34
_ON_AMAZON_LINUX_2: Final = frozenset({"3.10", "3.11"})
#: The oldest ``manylinux_2_X`` tag worth asking for (``manylinux1`` is glibc 2.5).
_OLDEST_GLIBC_MINOR: Final = 5
_LEGACY_ALIASES: Final = MappingProxyType(
    {
        "manylinux_2_5": "manylinux1",
        "manylinux_2_12": "manylinux2010",
        "manylinux_2_17": "manylinux2014",
    }
)


def check_python(version: str) -> str:
    """``version`` if Lambda runs it and this release knows it, else a clear error."""
    if version not in SUPPORTED_PYTHONS:
        raise LayerBuildError(
            f"Python {version!r} is not one of the Lambda runtimes this release supports: "
            f"{', '.join(SUPPORTED_PYTHONS)}"
        )
    return version


def python_of_runtime(runtime_name: str) -> str:
    """``"3.12"`` for the runtime name ``"python3.12"``; a clear error for anything else."""
    if not runtime_name.startswith("python3."):
        raise LayerBuildError(
            f"runtime {runtime_name!r} is not a Python runtime: Lambda Coverage measures "
            "python3.* functions"
        )
    return check_python(runtime_name.removeprefix("python"))


@dataclass(frozen=True)
class LambdaPlatform:
    """One Lambda Python runtime on one CPU architecture."""

    python: str
    architecture: str

    def __post_init__(self) -> None:
        check_python(self.python)
        if self.architecture not in MACHINES:
            raise LayerBuildError(
                f"architecture {self.architecture!r} is not a Lambda architecture: "
                f"choose one of {', '.join(MACHINES)}"
            )

    @property
    def machine(self) -> str:
        """The CPU name used in wheel tags and extension module names (``aarch64``)."""
        return MACHINES[self.architecture]

    @property
    def abi(self) -> str:
        """The CPython ABI tag, e.g. ``cp312``."""
        return "cp" + self.python.replace(".", "")

    @property
    def glibc_minor(self) -> int:
        """The minor version of the runtime image's glibc (2.X)."""
        if self.python in _ON_AMAZON_LINUX_2:
            return _AMAZON_LINUX_2_GLIBC_MINOR
        return _AMAZON_LINUX_2023_GLIBC_MINOR

    def platform_tags(self) -> tuple[str, ...]:
        """Every ``manylinux`` tag the runtime image can load, newest first.

        pip does not widen a ``--platform manylinux_2_X`` to the older tags it
        implies, so all of them are named.
        """
        tags: list[str] = []
        for minor in range(self.glibc_minor, _OLDEST_GLIBC_MINOR - 1, -1):
            base = f"manylinux_2_{minor}"
            tags.append(f"{base}_{self.machine}")
            if base in _LEGACY_ALIASES:
                tags.append(f"{_LEGACY_ALIASES[base]}_{self.machine}")
        return tuple(tags)

    @property
    def tracer_file(self) -> str:
        """coverage.py's compiled tracer for this platform, relative to site-packages."""
        return f"coverage/tracer.cpython-{self.abi[2:]}-{self.machine}-linux-gnu.so"

    @property
    def site_packages(self) -> str:
        """Where a layer's packages for this Python go (Lambda puts it on ``sys.path``)."""
        return f"python/lib/python{self.python}/site-packages"
