"""Which objects are data files, and how an input's name is read as a key.

The key layout itself is the wrapper's contract (:mod:`coverage_wrapper.keys`):
templates are parsed there, never restated here. Keys in another layout are
still accepted as inputs: for them the data's own ``function@version``
contexts say what ran; a key in the template's layout says whose data it is
(:mod:`coverage_combiner.claims`).
"""

from __future__ import annotations

from coverage_wrapper.keys import DATA_SUFFIX, is_probe_key

#: What coverage.py names its data files: ``.coverage``, and with ``parallel = true``
#: (or ``--parallel-mode``) ``.coverage.<host>.<pid>.<random>``; any ``.coverage.<suffix>``.
PARALLEL_PREFIX = f"{DATA_SUFFIX}."

#: Why an object that is not a data file was left out (it makes the result partial).
NOT_DATA = (
    f"not a data file (the name neither ends in {DATA_SUFFIX} nor starts with {PARALLEL_PREFIX})"
)

#: Why a file that is plainly no data (source, report, configuration) was passed over.
#: Such files sit beside data in the folders coverage.py users combine from; they leave
#: the exit code alone.
NOT_COVERAGE_DATA = "not coverage data: a source file, a report or a configuration file"

# Kept short on purpose: only what coverage.py, a project or an editor leaves beside the
# data. An unknown name (``notes.txt`` too: text could be anything) is still named and
# makes the result partial: it may be data that was misnamed.
_PLAIN_SUFFIXES = (
    ".py", ".pyc", ".pyi", ".pyo",
    ".json", ".xml", ".lcov", ".info", ".html", ".htm", ".css", ".js", ".svg", ".png", ".ico",
    ".md", ".rst",
    ".toml", ".cfg", ".ini", ".yml", ".yaml",
    "-journal",
)  # fmt: skip
_PLAIN_NAMES = frozenset(
    {".coveragerc", ".gitignore", ".DS_Store", "README", "LICENSE", "Makefile", "py.typed"}
)
#: Folders whose every file is a report or a cache (coverage.py's HTML, Python's bytecode).
_PLAIN_FOLDERS = frozenset({"htmlcov", "__pycache__", ".git", ".pytest_cache", ".mypy_cache"})


def is_health_probe(key: str) -> bool:
    """Whether ``key`` is one of the wrapper's S3 write probes (counted apart, never read).

    The key contract decides (:func:`coverage_wrapper.keys.is_probe_key`):
    ``.../{function}/_health/*.probe`` inside a function's folder, and the
    older ``{prefix}_health/*.probe``.
    """
    return is_probe_key(key)


def is_data_key(key: str) -> bool:
    """Whether ``key`` (an S3 key or a path) names a data file at all.

    The wrapper's keys end in ``.coverage``; coverage.py writes ``.coverage`` and,
    in parallel mode, ``.coverage.<host>.<pid>.<random>``: all are data, under S3
    as in a folder (coverage.py users may upload their parallel files).
    Anything else under a source is skipped (:func:`is_plainly_not_data`).
    """
    return key.endswith(DATA_SUFFIX) or _base_name(key).startswith(PARALLEL_PREFIX)


def is_plainly_not_data(key: str) -> bool:
    """Whether ``key`` (not a data file) is obviously none: a source file, a report, a
    configuration file, or anything in a report or cache folder such as ``htmlcov/``.

    Such files are listed as skipped but leave the exit code alone; any other
    object among the data is named and makes the result partial.
    """
    *folders, name = key.split("/")
    return (
        name in _PLAIN_NAMES
        or name.endswith(_PLAIN_SUFFIXES)
        or any(folder in _PLAIN_FOLDERS for folder in folders)
    )


def _base_name(key: str) -> str:
    return key.rpartition("/")[2]


def key_of(name: str) -> str:
    """The part of an input's name a key template is matched against.

    ``s3://bucket/key`` gives the key; a local path is taken whole, its
    folders playing the part of ``{prefix}``.
    """
    if name.startswith("s3://"):
        return name[5:].partition("/")[2]
    return name
