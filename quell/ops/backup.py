"""Backups of an installation on SQLite: `quell backup` and `quell restore`.

A backup is one tar file (gzip-compressed when its name ends in .gz or .tgz) holding:

- `quell.sqlite3`: a consistent copy of the database, taken online with SQLite's backup API while
  web servers and workers go on writing, and checked with `PRAGMA integrity_check`;
- `secret_key`: the key Quell generated in its data directory, when there is one (without it every
  session and password-reset link of the restored installation is void);
- `manifest.json`: the format, Quell's version, when it was taken, the database's SHA-256, and the
  migrations applied to it, so a restore can refuse a damaged file or one from a newer Quell and
  knows whether to migrate.

On PostgreSQL both commands refuse and point to pg_dump and pg_restore, which do the job better
than Quell could (docs/operations.md, "Backups").
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import quell
from quell.lib.jsontext import UnreadableJSON, parse_json

FORMAT = "quell-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "quell.sqlite3"
SECRET_KEY = "secret_key"
# A worker touches its heartbeat every few seconds; one seen this recently is still running.
WORKER_ALIVE = timedelta(minutes=2)
COPY_CHUNK = 1024 * 1024

DOCS = "docs/operations.md, section Backups"


class BackupError(Exception):
    """Something the operator must fix; the message says what. Nothing was changed."""


Migrations = dict[str, list[str]]


@dataclass
class Backup:
    path: Path
    manifest: dict[str, Any]


@dataclass
class Restored:
    database: Path
    manifest: dict[str, Any]
    # Migrations this Quell has that the backup's database lacks: `migrate` brings it up to date.
    pending: list[str] = field(default_factory=list)
    # The database that was replaced, kept under another name until the operator removes it.
    previous: Path | None = None
    secret_key_restored: bool = False


# --- Where the database is ------------------------------------------------------------------------


def sqlite_database(settings_dict: dict[str, Any], *, action: str) -> Path:
    """The SQLite file of this database configuration, or a BackupError saying what to use instead."""
    engine = settings_dict.get("ENGINE", "")
    if engine != "django.db.backends.sqlite3":
        name = settings_dict.get("NAME") or "quell"
        host = settings_dict.get("HOST") or "localhost"
        tool = "pg_dump -Fc -f quell.dump" if action == "backup" else "pg_restore --clean --if-exists -d"
        raise BackupError(
            f"Quell's database is PostgreSQL ({name} on {host}); `quell {action}` handles SQLite only. "
            f"Use PostgreSQL's own tools, e.g. `{tool} {name}`, and keep QUELL_SECRET_KEY (or the "
            f"data directory's secret_key file) with the dump. See {DOCS}."
        )
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError(f"The SQLite database {name!r} is not a file that can be backed up.")
    return Path(name)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    # mode=rw never creates a missing file, which a plain connect would do silently. (Not mode=ro:
    # a read-only connection cannot always read a WAL database whose -shm file is missing.)
    uri = path.resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=20, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _check_integrity(conn: sqlite3.Connection, what: str) -> None:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{what} is not a readable SQLite database ({error}).") from None
    except UnicodeDecodeError:
        # The report quotes what it found, and what it found here is damaged bytes: no "ok" among them.
        raise BackupError(
            f"{what} failed SQLite's integrity check: its report quotes damaged bytes."
        ) from None
    if rows != [("ok",)]:
        problems = "; ".join(str(row[0]) for row in rows[:5])
        raise BackupError(f"{what} failed SQLite's integrity check: {problems}")


def _applied_migrations(conn: sqlite3.Connection, what: str) -> Migrations:
    try:
        rows = conn.execute("SELECT app, name FROM django_migrations ORDER BY app, name").fetchall()
    except sqlite3.DatabaseError:
        raise BackupError(f"{what} holds no Quell database (it has no migrations table).") from None
    except UnicodeDecodeError:
        # PRAGMA integrity_check checks the file's structure, not what its rows hold: a damaged page
        # of django_migrations passes it and then reads as bytes that are no text.
        raise BackupError(
            f"{what} is not a readable Quell database: its migrations table is damaged."
        ) from None
    applied: Migrations = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return applied


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Backup ---------------------------------------------------------------------------------------


def backup_target(path: Path, now: datetime) -> Path:
    """Where to write: PATH itself, or a dated file inside PATH when it is a directory."""
    if path.is_dir():
        return path / f"quell-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    if path.exists():
        raise BackupError(f"{path} already exists; choose a new name (a backup never overwrites a file).")
    if not path.parent.is_dir():
        raise BackupError(f"The directory {path.parent} does not exist.")
    return path


def copy_database(source: Path, copy: Path) -> Migrations:
    """Copy a live SQLite database to `copy` as one consistent snapshot, and check the copy.

    The copy is made in a single step of the backup API: that is one read transaction, which in WAL
    mode never blocks writers. Copying in several steps would give writers a gap between steps, but
    each write by another process makes SQLite start the copy over, and under steady ingestion it
    might never finish.
    """
    if not source.is_file():
        raise BackupError(f"There is no database at {source}; nothing to back up.")
    with _open(source) as src, contextlib.closing(sqlite3.connect(copy)) as dst:
        try:
            src.backup(dst)
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source} is not a readable SQLite database ({error}).") from None
        # One self-contained file: the copy must not need a -wal file beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        _check_integrity(dst, "The copy of the database")
        return _applied_migrations(dst, f"The database at {source}")


def create_backup(
    database: Path, target: Path, *, data_dir: Path, secret_key_from_env: bool, now: datetime | None = None
) -> Backup:
    """Write a backup of `database` (and the data directory's secret key) to `target`.

    The tar file is written under a temporary name in the target's directory and renamed when
    complete, so a backup file that exists is a whole one.
    """
    now = now or datetime.now(UTC)
    target = backup_target(target, now)
    with tempfile.TemporaryDirectory(prefix=".quell-backup-", dir=target.parent) as work:
        copy = Path(work) / DATABASE
        migrations = copy_database(database, copy)
        key = data_dir / SECRET_KEY
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "quellVersion": quell.__version__,
            "createdAt": now.isoformat(),
            "database": {"file": DATABASE, "sha256": _sha256(copy), "bytes": copy.stat().st_size},
            "migrations": migrations,
            # "environment": the installation used QUELL_SECRET_KEY, which the operator keeps.
            "secretKey": "environment" if secret_key_from_env else ("file" if key.is_file() else "absent"),
        }
        partial = Path(work) / "backup.tar"
        mode = "w:gz" if target.name.endswith((".gz", ".tgz")) else "w"
        with partial.open("wb") as handle, tarfile.open(fileobj=handle, mode=mode) as tar:  # type: ignore[call-overload]
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode(), now)
            tar.add(copy, arcname=DATABASE, filter=_private)
            if key.is_file():
                tar.add(key, arcname=SECRET_KEY, filter=_private)
            handle.flush()
            os.fsync(handle.fileno())
        # It holds the secret key and every record: readable by the owner only.
        partial.chmod(0o600)
        os.replace(partial, target)
    _fsync_dir(target.parent)
    return Backup(path=target, manifest=manifest)


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, now: datetime) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(now.timestamp())
    tar.addfile(_private(info), io.BytesIO(data))


# --- Reading a backup -----------------------------------------------------------------------------


@dataclass
class VerifiedBackup:
    manifest: dict[str, Any]
    database: Path  # the checked copy, in a temporary file
    migrations: Migrations
    secret_key: str | None


def _member(tar: tarfile.TarFile, name: str, source: Path) -> IO[bytes] | None:
    try:
        info = tar.getmember(name)
    except KeyError:
        return None
    if not info.isfile():
        raise BackupError(f"{source} is not a Quell backup: {name} in it is not a regular file.")
    return tar.extractfile(info)


def read_backup(source: Path, work: Path) -> VerifiedBackup:
    """Open a backup, copy its database into `work` and check everything the manifest promises."""
    if not source.is_file():
        raise BackupError(f"There is no backup file at {source}.")
    with contextlib.ExitStack() as stack:
        try:
            tar = stack.enter_context(tarfile.open(source, mode="r:*"))
        except (tarfile.TarError, EOFError, OSError):
            raise BackupError(f"{source} is not a Quell backup: it is not a tar file.") from None
        try:
            return _read_members(tar, source, work)
        except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as error:
            raise BackupError(f"{source} is damaged: {error}") from None


def _read_members(tar: tarfile.TarFile, source: Path, work: Path) -> VerifiedBackup:
    raw = _member(tar, MANIFEST, source)
    if raw is None:
        raise BackupError(f"{source} is not a Quell backup: it has no {MANIFEST}.")
    try:
        manifest = parse_json(raw.read(), subject=f"its {MANIFEST}")
    except UnreadableJSON as error:
        raise BackupError(f"{source} is damaged: {error.message}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not a Quell backup: its manifest is not a {FORMAT} manifest.")
    version = manifest.get("formatVersion")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(
            f"{source} was written by a newer Quell ({manifest.get('quellVersion')}, format {version}); "
            f"restore it with that version or a later one."
        )
    expected = manifest.get("database")
    if not isinstance(expected, dict) or not isinstance(expected.get("sha256"), str):
        raise BackupError(f"{source} is damaged: its manifest does not describe the database.")
    stream = _member(tar, DATABASE, source)
    if stream is None:
        raise BackupError(f"{source} is damaged: it has no {DATABASE}.")
    copy = work / DATABASE
    digest = hashlib.sha256()
    with copy.open("wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected["sha256"]:
        raise BackupError(f"{source} is damaged: its database does not match the checksum in the manifest.")
    with _open(copy) as conn:
        _check_integrity(conn, f"The database in {source}")
        migrations = _applied_migrations(conn, f"The database in {source}")
    key_stream = _member(tar, SECRET_KEY, source)
    secret_key = key_stream.read().decode().strip() if key_stream is not None else None
    return VerifiedBackup(manifest=manifest, database=copy, migrations=migrations, secret_key=secret_key)


# --- Restore --------------------------------------------------------------------------------------


def known_migrations() -> set[tuple[str, str]]:
    """Every migration this version of Quell (and its libraries) ships."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    return set(loader.disk_migrations)


def compare_migrations(applied: Migrations, known: set[tuple[str, str]]) -> list[str]:
    """The migrations still to run on the backup's database; refuses one from a newer schema."""
    have = {(app, name) for app, names in applied.items() for name in names}
    known_apps = {app for app, _ in known}
    unknown = sorted(f"{app}.{name}" for app, name in have - known if app in known_apps)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise BackupError(
            "The backup comes from a newer Quell: its database has migrations this version does not "
            f"know ({shown}). Install that version (or a later one) and restore again."
        )
    return sorted(f"{app}.{name}" for app, name in known - have)


def running_workers(database: Path, now: datetime) -> list[str]:
    """Names of workers whose heartbeat in this database is recent."""
    if not database.is_file():
        return []
    # Django keeps datetimes in SQLite as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]", which sorts as time.
    since = (now - WORKER_ALIVE).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        with _open(database) as conn:
            rows = conn.execute(
                "SELECT name FROM ops_workerheartbeat WHERE seen_at >= ? ORDER BY name", (since,)
            ).fetchall()
    except sqlite3.DatabaseError:
        # No heartbeat table (an empty or pre-ops database): no worker can be using it.
        return []
    return [str(row[0]) for row in rows]


def _settle(database: Path) -> None:
    """Fold the live database's WAL into its file, so the file alone is the whole old database."""
    try:
        with _open(database) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.DatabaseError as error:
        # A damaged database is what a restore is for; it is kept aside as it is.
        if "locked" in str(error) or "busy" in str(error):
            raise BackupError(
                f"{database} is in use ({error}); stop Quell's web servers and workers."
            ) from None
        return
    if busy:
        raise BackupError(
            f"{database} is in use by another process; stop Quell's web servers and workers, then restore."
        )


def restore_backup(
    source: Path,
    database: Path,
    *,
    data_dir: Path,
    force: bool = False,
    now: datetime | None = None,
) -> Restored:
    """Replace `database` (and the data directory's secret key) with the backup's, after checking both.

    Refuses, changing nothing, when the backup is not whole, comes from a newer Quell, or a worker
    has shown a heartbeat in the current database within WORKER_ALIVE (unless `force`). The old
    database stays beside the new one as `<name>.pre-restore`. The caller runs the pending migrations.
    """
    now = now or datetime.now(UTC)
    database.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".quell-restore-", dir=database.parent) as work:
        backup = read_backup(source, Path(work))
        pending = compare_migrations(backup.migrations, known_migrations())
        if not force:
            workers = running_workers(database, now)
            if workers:
                raise BackupError(
                    f"Quell's worker is running on this database ({', '.join(workers)} was seen within the "
                    f"last {int(WORKER_ALIVE.total_seconds())} seconds). Stop the workers and web servers "
                    "first, or pass --force if they are gone."
                )
        previous: Path | None = None
        if database.exists():
            _settle(database)
            previous = database.with_name(database.name + ".pre-restore")
            previous.unlink(missing_ok=True)
            # A second name for the old file, so that the swap below is a single atomic rename.
            os.link(database, previous)
        os.replace(backup.database, database)
        # The old database's WAL and shared-memory index must never be applied to the new file.
        for suffix in ("-wal", "-shm", "-journal"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        _fsync_dir(database.parent)
    restored_key = bool(backup.secret_key) and _write_secret_key(data_dir, backup.secret_key or "")
    return Restored(
        database=database,
        manifest=backup.manifest,
        pending=pending,
        previous=previous,
        secret_key_restored=restored_key,
    )


def _write_secret_key(data_dir: Path, key: str) -> bool:
    """Put the backup's key in place (keeping a different one aside); False when it was already there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_KEY
    if path.is_file() and path.read_text().strip() == key:
        return False
    if path.is_file():
        os.replace(path, data_dir / (SECRET_KEY + ".pre-restore"))
    fd, partial = tempfile.mkstemp(prefix=".secret_key-", dir=data_dir)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return True
