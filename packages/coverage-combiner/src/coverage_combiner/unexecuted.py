"""Files of a function's code that never ran: reported at 0 %, as coverage.py's ``source`` does.

A function's folder (given with ``--source-root``, or inside the deployment zip
given with ``--source-zip``) is searched as coverage.py searches a
``source`` folder: every ``.py``/``.pyw`` file of the folder
itself, and of each folder below it that holds an ``__init__.py`` (an
importable package). Third-party code vendored into the asset is left out:
every file a ``*.dist-info/RECORD`` in the folder lists. A file whose real
path leaves the folder (a symbolic link) is never read.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: The file names coverage.py takes for importable Python (editor side-files are not).
_PYTHON_FILE = re.compile(r"[^.#~!$@%^&*()+=,]+\.pyw?")


def zip_part(folder: str) -> tuple[str, str] | None:
    """``(archive, folder inside it)`` when ``folder`` is a zip file or a folder inside one."""
    archive, sep, inner = folder.partition(".zip/")
    archive = archive + ".zip" if sep else folder
    if archive.endswith(".zip") and os.path.isfile(archive):
        return archive, inner.strip("/")
    return None


def is_source_folder(folder: str) -> bool:
    """Whether ``folder`` is a folder on disk or inside a deployment zip."""
    return os.path.isdir(folder) or zip_part(folder) is not None


def unexecuted_candidates(folder: str) -> Iterator[str]:
    """Every importable Python file of ``folder`` that is its own (absolute paths).

    Vendored files (listed by a ``*.dist-info/RECORD``) and files whose real
    path leaves ``folder`` are left out.
    """
    inside_zip = zip_part(folder)
    if inside_zip is not None:
        yield from _zip_candidates(*inside_zip)
    else:
        yield from _folder_candidates(folder)


def _record_entries(rows: Iterable[list[str]]) -> Iterator[str]:
    for row in rows:
        if row and row[0]:
            yield row[0]


def vendored_files(folder: str) -> set[str]:
    """The real paths of the files the ``*.dist-info/RECORD`` files of ``folder`` list."""
    listed: set[str] = set()
    for record in Path(folder).glob("*.dist-info/RECORD"):
        try:
            with record.open(newline="") as stream:
                entries = list(_record_entries(csv.reader(stream)))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        listed.update(os.path.realpath(os.path.join(folder, entry)) for entry in entries)
    return listed


def _folder_candidates(folder: str) -> Iterator[str]:
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


def _zip_candidates(archive: str, inner: str) -> Iterator[str]:
    """:func:`unexecuted_candidates` for the folder ``inner`` of the zip ``archive``."""
    prefix = f"{inner}/" if inner else ""
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = [n for n in bundle.namelist() if n.startswith(prefix)]
            vendored: set[str] = set()
            for name in names:
                if re.fullmatch(r"[^/]+\.dist-info/RECORD", name[len(prefix) :]):
                    text = bundle.read(name).decode(errors="replace")
                    vendored.update(
                        posixpath.normpath(prefix + entry)
                        for entry in _record_entries(csv.reader(io.StringIO(text)))
                    )
    except (OSError, zipfile.BadZipFile, csv.Error):
        return
    members = set(names)
    for name in sorted(members):
        parts = name[len(prefix) :].split("/")
        if not _PYTHON_FILE.fullmatch(parts[-1]) or name in vendored:
            continue
        # A member named ``../x.py`` or ``/x.py`` would name a file outside the zip.
        if name.startswith("/") or ".." in name.split("/"):
            continue
        # Every folder below the top must be a package, as on disk.
        packages = (
            prefix + "/".join(parts[:depth]) + "/__init__.py" for depth in range(1, len(parts))
        )
        if all(package in members for package in packages):
            yield os.path.abspath(f"{archive}/{name}")
