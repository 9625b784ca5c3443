"""Files of a function's code that never ran: reported at 0 %, as coverage.py's ``source`` does.

A function's folder (given with ``--source-root``) is searched as coverage.py
searches a ``source`` folder: every ``.py``/``.pyw`` file of the folder
itself, and of each folder below it that holds an ``__init__.py`` (an
importable package). Third-party code vendored into the asset is left out:
every file a ``*.dist-info/RECORD`` in the folder lists. A file whose real
path leaves the folder (a symbolic link) is never read.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

#: The file names coverage.py takes for importable Python (editor side-files are not).
_PYTHON_FILE = re.compile(r"[^.#~!$@%^&*()+=,]+\.pyw?")


def vendored_files(folder: str) -> set[str]:
    """The real paths of the files the ``*.dist-info/RECORD`` files of ``folder`` list."""
    listed: set[str] = set()
    for record in Path(folder).glob("*.dist-info/RECORD"):
        try:
            with record.open(newline="") as stream:
                rows = list(csv.reader(stream))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        for row in rows:
            if row and row[0]:
                listed.add(os.path.realpath(os.path.join(folder, row[0])))
    return listed


def unexecuted_candidates(folder: str) -> Iterator[str]:
    """Every importable Python file of ``folder`` that is its own (absolute paths).

    Vendored files (:func:`vendored_files`) and files whose real path leaves
    ``folder`` are left out.
    """
    top = os.path.realpath(folder)
    vendored = vendored_files(folder)
    for depth, (dirpath, dirnames, filenames) in enumerate(os.walk(folder)):
        if depth > 0 and "__init__.py" not in filenames:
            # Not a package: coverage.py does not look inside it either.
            dirnames.clear()
            continue
        dirnames.sort()
        for name in sorted(filenames):
            if not _PYTHON_FILE.fullmatch(name):
                continue
            path = os.path.join(dirpath, name)
            real = os.path.realpath(path)
            if real in vendored or os.path.commonpath([real, top]) != top:
                continue
            yield os.path.abspath(path)
