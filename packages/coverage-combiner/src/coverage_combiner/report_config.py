"""The user's coverage.py configuration, read for reporting only.

Which file applies is decided in one place (:func:`choose_config`):

1. the file given (``--rcfile PATH``), else
2. the functions' own: the first of ``.coveragerc``, ``.coveragerc.toml``,
   ``setup.cfg``, ``tox.ini``, ``pyproject.toml`` holding coverage settings in
   a function's source folder, when every function of the report has the same
   one (one function, or functions sharing a folder or a config), else
3. the working folder's, found the same way (as ``coverage report`` finds it).

One configuration applies to the whole report: functions whose own configs
differ are reported with the working folder's, and a warning names them.

The file is read for reporting (exclusions, partial branches, omit/include,
precision, fail_under; in HTML skip_covered, skip_empty and the title;
``[run]`` omit/include where ``[report]`` sets none). What would change
where data is read from or how it was measured is overridden
(:data:`OVERRIDES`): the merged data file is ours.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage_combiner.errors import CombinerError

if TYPE_CHECKING:
    from coverage import Coverage

    from coverage_combiner.remap import PathRemapper

#: The files coverage.py reads its settings from, in the order it tries them.
CONFIG_FILES = (".coveragerc", ".coveragerc.toml", "setup.cfg", "tox.ini", "pyproject.toml")
#: The title of the HTML report when the configuration names none.
DEFAULT_TITLE = "Lambda Coverage"
#: Settings the combiner decides whatever the file says: the data is the
#: merged file, read as it is; plugins and sources belong to measurement.
OVERRIDES: Mapping[str, Any] = {
    "run:parallel": False,
    "run:source": None,
    "run:source_pkgs": None,
    "run:plugins": [],
    "run:debug": [],
}

_TOOL_COVERAGE = re.compile(r"^\s*\[+\s*tool\.coverage\b", re.MULTILINE)


@dataclass(frozen=True)
class ReportConfig:
    """The configuration file chosen for the report (None: coverage.py's defaults)."""

    path: str | None = None
    #: Why a function's own configuration was not applied, one sentence each.
    warnings: list[str] = field(default_factory=list)


def has_coverage_settings(path: Path) -> bool:
    """Whether ``path`` is a file that holds coverage.py settings, as coverage.py reads it.

    ``.coveragerc`` files always count; ``setup.cfg`` and ``tox.ini`` only with
    ``[coverage:...]`` sections; ``pyproject.toml`` only with ``[tool.coverage...]``.
    """
    if not path.is_file():
        return False
    if path.name in (".coveragerc", ".coveragerc.toml"):
        return True
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix == ".toml":
        return bool(_TOOL_COVERAGE.search(text))
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error:
        return False
    return any(section.startswith("coverage:") for section in parser.sections())


def find_config(folder: str | os.PathLike[str]) -> str | None:
    """The first file of :data:`CONFIG_FILES` in ``folder`` holding coverage settings."""
    for name in CONFIG_FILES:
        candidate = Path(folder, name)
        if has_coverage_settings(candidate):
            return os.path.abspath(candidate)
    return None


def choose_config(rcfile: str | None, remap: PathRemapper | None) -> ReportConfig:
    """The configuration that applies to a report (see the module's documentation).

    ``remap`` must be resolved (its :attr:`~PathRemapper.function_roots` known).
    """
    if rcfile is not None:
        if not Path(rcfile).is_file():
            raise CombinerError(
                f"--rcfile {rcfile!r} is not a file: give the path of a .coveragerc, "
                "setup.cfg, tox.ini or pyproject.toml"
            )
        return ReportConfig(os.path.abspath(rcfile))
    here = find_config(".")
    own = {
        function: find_config(folder)
        for function, folder in sorted((remap.function_roots if remap else {}).items())
        if os.path.isdir(folder)
    }
    found = {path for path in own.values() if path is not None}
    if len(found) == 1 and all(path is not None for path in own.values()):
        return ReportConfig(found.pop())
    warnings = []
    if found:
        applied = here or "coverage.py's defaults"
        warnings.append(
            "the functions have different coverage configurations ("
            + ", ".join(f"{function}: {path or 'none'}" for function, path in own.items())
            + f"); the report uses {applied} for all of them; give one with --rcfile"
        )
    return ReportConfig(here, warnings)


def reporting_coverage(data_file: str | os.PathLike[str], config: ReportConfig) -> Coverage:
    """A ``Coverage`` object that reports ``data_file`` with ``config``'s report settings."""
    from coverage import Coverage
    from coverage.exceptions import ConfigError

    try:
        cov = Coverage(data_file=str(data_file), config_file=config.path or False)
    except ConfigError as exc:
        raise CombinerError(
            f"cannot read the coverage configuration {config.path}: {exc}; fix it or "
            "choose another with --rcfile"
        ) from exc
    for name, value in OVERRIDES.items():
        cov.set_option(name, value)
    # The functions were measured without this file: what [run] would have
    # left out of the measurement is left out of the report instead.
    for kind in ("omit", "include"):
        if not cov.get_option(f"report:{kind}") and cov.get_option(f"run:{kind}"):
            cov.set_option(f"report:{kind}", cov.get_option(f"run:{kind}"))
    return cov


def html_title(cov: Coverage) -> str:
    """The configured HTML title, or :data:`DEFAULT_TITLE` when none is set."""
    from coverage import Coverage

    title = cov.get_option("html:title")
    default = Coverage(data_file=None, config_file=False).get_option("html:title")
    return str(title) if title != default else DEFAULT_TITLE
