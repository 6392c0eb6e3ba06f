"""The data directory is private to the user Quell runs as: folders 700, files 600.

It holds the SQLite database (webhook signing secrets, custom header values, Slack and Teams URLs,
sessions), the generated secret key, backups an operator may write there, metrics scratch files and
collected static files. Settings call `make_private` in every Quell process before anything is
written; `quell check --deploy` reports what is still readable by others (quell.ops.checks).

This module must not import Django: settings use it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Files a Quell process creates, anywhere, are its user's alone (SQLite's -wal and -shm files follow
# the database file's mode, so they are private as soon as the database is).
PRIVATE_UMASK = 0o077
# Permission bits for the group and for everyone else.
SHARED_BITS = 0o077
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_umask() -> None:
    """Create every file and folder from now on without permissions for the group and others."""
    os.umask(PRIVATE_UMASK)


def sqlite_files(database: dict[str, Any]) -> list[Path]:
    """The files of a SQLite database configuration (the database, its WAL, shared memory, journal)."""
    if database.get("ENGINE") != "django.db.backends.sqlite3":
        return []
    name = str(database.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return []
    return [Path(name + suffix) for suffix in SQLITE_SUFFIXES]


def _entries(roots: Iterable[Path]) -> Iterator[tuple[Path, os.stat_result]]:
    """Each root and, for a folder, everything in it; symbolic links are neither followed nor listed."""
    for root in roots:
        try:
            found = root.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode):
            continue
        yield root, found
        if not stat.S_ISDIR(found.st_mode):
            continue
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = Path(folder, name)
                try:
                    entry = path.lstat()
                except FileNotFoundError:
                    continue  # removed meanwhile (a metrics file of a process that ended)
                if not stat.S_ISLNK(entry.st_mode):
                    yield path, entry


def make_private(data_dir: Path, others: Iterable[Path] = ()) -> None:
    """Create `data_dir` (700) if needed, and take the group's and others' permissions off it, off
    everything in it, and off `others` (a SQLite database kept elsewhere).

    An installation from before Quell did this has a 755 folder with 644 files; this tightens it at
    its first start. What is not this user's is left as it is, for `quell check --deploy` to report.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, found in _entries([data_dir, *others]):
        if found.st_mode & SHARED_BITS:
            # Gone meanwhile, another user's, or on a read-only file system: the check names what is left.
            with contextlib.suppress(OSError):
                path.chmod(stat.S_IMODE(found.st_mode) & ~SHARED_BITS)


def readable_by_others(data_dir: Path, others: Iterable[Path] = ()) -> dict[Path, int]:
    """The data directory, what is in it, and `others`, where the group or others have a permission,
    with their permission bits."""
    return {
        path: stat.S_IMODE(found.st_mode)
        for path, found in _entries([data_dir, *others])
        if found.st_mode & SHARED_BITS
    }
