"""`quell backup` and `quell restore`: online, consistent copies of a SQLite installation, restored whole
or not at all. Each test runs real `quell` processes on SQLite data directories of its own, whichever
database the rest of the suite uses."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from quell.ops.backup import BackupError, create_backup, restore_backup
from tests.conftest import OWN_SQLITE_DATA_DIR

pytestmark = pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)

WRITER = """
import datetime as dt, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
import django
django.setup()
from quell.accounts.models import ApiKey, GlobalRole, User
from quell.catalog import ingest as catalog_ingest
from quell.incidents import services as incidents

count, stop = int(sys.argv[1]), sys.argv[2]
admin = User.objects.create_user("alice@example.com", "pw-for-tests", global_role=GlobalRole.ADMIN)
key, secret = ApiKey.issue(admin)
print(json.dumps({"key": key.key_id, "secret": secret}), flush=True)
made = 0
# Each round writes a scan, a result and an incident with its timeline, in separate transactions.
while (count and made < count) or (not count and not os.path.exists(stop)):
    scan = catalog_ingest.ScanInput(
        data_timestamp=dt.datetime.now(dt.UTC),
        results=[catalog_ingest.ResultInput(data_source="warehouse", dataset="orders",
                                     check=catalog_ingest.CheckInput(name="row_count > 0"), outcome="fail", value=0)],
    )
    _, (result,) = catalog_ingest.ingest_scan(scan, by=admin)
    # The new failure was folded into the previous round's incident: a separate one, on purpose.
    incidents.create_incident(by=admin, title=f"Incident {made}", severity="major", check_result_ids=[result.pk],
                              allow_duplicate=True)
    made += 1
    print(made, flush=True)
"""

SERVE = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
from wsgiref.simple_server import WSGIRequestHandler, make_server
from quell.wsgi import application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"""


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    env.update(QUELL_DATA_DIR=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def quell(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quell", *args],
        env=env_for(home, **env),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installation with its schema and nothing else, copied by each test that needs one."""
    home = tmp_path_factory.mktemp("migrated")
    done = quell(home, "migrate", "--verbosity", "0")
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def new_home(migrated: Path, tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        home = tmp_path / name
        shutil.copytree(migrated, home, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
        return home

    return make


def backup_of(home: Path, target: Path) -> Path:
    """A backup made in this process, for tests about what comes after."""
    return create_backup(home / "quell.sqlite3", target, data_dir=home, secret_key_from_env=False).path


def populate(home: Path, incidents: int) -> dict[str, str]:
    """Write `incidents` incidents (with their scans and results) and return the admin's API key."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(incidents), ""],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    key: dict[str, str] = json.loads(done.stdout.splitlines()[0])
    return key


@contextlib.contextmanager
def served(home: Path) -> Iterator[str]:
    web = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert web.stdout is not None
        port = web.stdout.readline().decode().strip()
        assert port.isdigit(), "the web process did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(15)


def database_of(backup: Path, into: Path) -> Path:
    with tarfile.open(backup) as tar:
        member = tar.extractfile("quell.sqlite3")
        assert member is not None
        (into / "copy.sqlite3").write_bytes(member.read())
    return into / "copy.sqlite3"


# --- Backing up -----------------------------------------------------------------------------------


def test_a_backup_taken_while_quell_writes_holds_one_moment_of_it(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    home = new_home("live")
    stop = tmp_path / "stop"
    progress = tmp_path / "writer.out"
    with progress.open("w") as out:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, "0", str(stop)],
            env=env_for(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: len(progress.read_text().splitlines()) > 20, "the writer making incidents")
        backups = [
            create_backup(
                home / "quell.sqlite3", tmp_path / f"b{n}.tar", data_dir=home, secret_key_from_env=False
            )
            for n in range(3)
        ]
        # The backups were taken with the writer still at work.
        assert writer.poll() is None
    finally:
        stop.touch()
        assert writer.wait(60) == 0, progress.read_text()

    counts = []
    for n, backup in enumerate(backups):
        work = tmp_path / f"open{n}"
        work.mkdir()
        with contextlib.closing(sqlite3.connect(database_of(backup.path, work))) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            incidents = db.execute("SELECT count(*), max(number) FROM incidents_incident").fetchone()
            created = db.execute(
                "SELECT count(DISTINCT incident_id) FROM incidents_timelineevent WHERE kind = 'created'"
            ).fetchone()[0]
            linked = db.execute(
                "SELECT count(DISTINCT incident_id) FROM incidents_incidentcheckresult"
            ).fetchone()[0]
            results = db.execute("SELECT count(*) FROM catalog_checkresult").fetchone()[0]
            last_number = db.execute(
                "SELECT last_value FROM incidents_numbersequence WHERE name = 'incident'"
            ).fetchone()[0]
        # Every incident with its timeline and its result, and nothing half-written.
        assert incidents[0] == created == linked == incidents[1] == last_number
        assert results in (incidents[0], incidents[0] + 1)  # a result may be waiting for its incident
        counts.append(incidents[0])
    assert counts == sorted(counts)
    assert counts[0] >= 20


def test_a_backup_holds_the_secret_key_and_a_manifest(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    home = new_home("keyed")

    done = quell(home, "backup", str(tmp_path / "quell.tar.gz"))

    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout
    backup = tmp_path / "quell.tar.gz"
    assert backup.stat().st_mode & 0o777 == 0o600
    with tarfile.open(backup) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "quell.sqlite3", "secret_key"]
        key = tar.extractfile("secret_key")
        raw = tar.extractfile("manifest.json")
        assert key is not None
        assert raw is not None
        assert key.read().decode() == (home / "secret_key").read_text()
        manifest = json.loads(raw.read())
    assert manifest["format"] == "quell-backup"
    assert "0005_retention_settings" in manifest["migrations"]["accounts"]
    assert manifest["secretKey"] == "file"


def test_a_backup_into_a_directory_gets_a_dated_name_and_never_overwrites_a_file(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    home = new_home("dated")
    target = tmp_path / "backups"
    target.mkdir()

    backup_of(home, target)
    (made,) = target.iterdir()
    assert made.name.startswith("quell-backup-")
    assert made.name.endswith(".tar.gz")

    before = sha(made)
    again = quell(home, "backup", str(made))
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert sha(made) == before


def test_a_damaged_database_is_not_backed_up(tmp_path: Path) -> None:
    home = tmp_path / "damaged"
    home.mkdir()
    (home / "quell.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)

    with pytest.raises(BackupError, match="is not a readable SQLite database"):
        create_backup(home / "quell.sqlite3", tmp_path / "x.tar", data_dir=home, secret_key_from_env=False)
    assert not (tmp_path / "x.tar").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["damaged"]


def test_on_postgresql_backup_and_restore_point_to_pg_dump_and_pg_restore(tmp_path: Path) -> None:
    postgres = {"QUELL_DATABASE_URL": "postgresql://quell@127.0.0.1:5432/quell_prod"}

    backup = quell(tmp_path, "backup", str(tmp_path / "x.tar"), **postgres)
    restore = quell(tmp_path, "restore", str(tmp_path / "x.tar"), **postgres)

    assert backup.returncode != 0
    assert "pg_dump -Fc" in backup.stderr
    assert "quell_prod" in backup.stderr
    assert restore.returncode != 0
    assert "pg_restore" in restore.stderr
    assert not (tmp_path / "x.tar").exists()


# --- Restoring ------------------------------------------------------------------------------------


def test_a_restored_backup_is_served_by_a_fresh_installation(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    old = new_home("old")
    key = populate(old, incidents=7)
    backup_of(old, tmp_path / "b.tar")
    fresh = tmp_path / "fresh"

    done = quell(fresh, "restore", str(tmp_path / "b.tar"))

    assert done.returncode == 0, done.stderr
    assert (fresh / "secret_key").read_text() == (old / "secret_key").read_text()
    with served(fresh) as url:
        response = httpx.get(f"{url}/api/v1/incidents", auth=(key["key"], key["secret"]), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["totalElements"] == 7
    assert {row["name"] for row in response.json()["content"]} >= {"Incident 0", "Incident 6"}


def test_restoring_over_an_installation_keeps_the_old_database_aside(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    source = new_home("source")
    populate(source, incidents=3)
    backup_of(source, tmp_path / "b.tar")
    target = new_home("target")
    populate(target, incidents=1)
    before = sha(target / "quell.sqlite3")

    done = quell(target, "restore", str(tmp_path / "b.tar"))

    assert done.returncode == 0, done.stderr
    assert "kept as" in done.stdout
    assert sha(target / "quell.sqlite3.pre-restore") == before
    assert not (target / "quell.sqlite3-wal").exists() or (target / "quell.sqlite3-wal").stat().st_size == 0
    with contextlib.closing(sqlite3.connect(target / "quell.sqlite3")) as db:
        assert db.execute("SELECT count(*) FROM incidents_incident").fetchone()[0] == 3


@pytest.fixture(scope="module")
def older_backup(migrated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of an installation one migration behind this Quell (before the retention settings)."""
    home = tmp_path_factory.mktemp("older")
    shutil.copytree(migrated, home, dirs_exist_ok=True)
    done = quell(home, "migrate", "accounts", "0004_sample_settings", "--verbosity", "0")
    assert done.returncode == 0, done.stderr
    return backup_of(home, home / "old.tar")


def test_restoring_a_backup_from_an_older_quell_migrates_it(older_backup: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"

    done = quell(fresh, "restore", str(older_backup))

    assert done.returncode == 0, done.stderr
    # Rolling accounts back to 0004 also unapplied the accounts migrations after it.
    assert re.search(r"Applying [1-9]\d* migrations the backup predates", done.stdout), done.stdout
    with contextlib.closing(sqlite3.connect(fresh / "quell.sqlite3")) as db:
        assert db.execute(
            "SELECT 1 FROM django_migrations WHERE app = 'accounts' AND name = '0005_retention_settings'"
        ).fetchone()
        assert db.execute("SELECT keep_scans_days FROM accounts_organization").fetchall() == [(90,)]


def test_with_no_migrate_the_operator_is_told_to_migrate(older_backup: Path, tmp_path: Path) -> None:
    done = quell(tmp_path / "fresh", "restore", "--no-migrate", str(older_backup))

    assert done.returncode == 0, done.stderr
    assert "run `quell migrate`" in done.stdout


def beat(home: Path, seen: datetime) -> None:
    with contextlib.closing(sqlite3.connect(home / "quell.sqlite3")) as db, db:
        stamp = seen.strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute(
            "INSERT INTO ops_workerheartbeat (name, hostname, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)",
            ("box:42:1", "box", 42, stamp, stamp),
        )


def test_restore_refuses_while_a_worker_is_running_unless_forced(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    source = new_home("source")
    backup_of(source, tmp_path / "b.tar")
    target = new_home("target")
    beat(target, datetime.now(UTC))
    before = sha(target / "quell.sqlite3")

    refused = quell(target, "restore", str(tmp_path / "b.tar"))

    assert refused.returncode != 0
    assert "worker is running" in refused.stderr
    assert "box:42:1" in refused.stderr
    assert sha(target / "quell.sqlite3") == before
    forced = quell(target, "restore", "--force", str(tmp_path / "b.tar"))
    assert forced.returncode == 0, forced.stderr


def test_a_worker_that_stopped_long_ago_does_not_hold_up_a_restore(
    new_home: Callable[[str], Path], tmp_path: Path
) -> None:
    source = new_home("source")
    backup_of(source, tmp_path / "b.tar")
    target = new_home("target")
    beat(target, datetime(2020, 1, 1, tzinfo=UTC))

    assert quell(target, "restore", str(tmp_path / "b.tar")).returncode == 0


def rebuild(
    good: Path,
    bad: Path,
    *,
    manifest: Callable[[dict[str, object]], None] | None = None,
    database: Callable[[Path], None] | None = None,
    drop: str = "",
    fix_checksum: bool = True,
) -> None:
    """Write `bad`: the backup `good` with its manifest or database changed, or a member left out."""
    work = bad.parent / (bad.name + ".work")
    work.mkdir()
    with tarfile.open(good) as tar:
        tar.extractall(work, filter="data")
    data = json.loads((work / "manifest.json").read_text())
    if database is not None:
        database(work / "quell.sqlite3")
        if fix_checksum:
            data["database"]["sha256"] = sha(work / "quell.sqlite3")
    if manifest is not None:
        manifest(data)
    (work / "manifest.json").write_text(json.dumps(data))
    with tarfile.open(bad, "w") as tar:
        for name in ("manifest.json", "quell.sqlite3", "secret_key"):
            if name != drop:
                tar.add(work / name, arcname=name)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_every_page(path: Path) -> None:
    """Flip a byte in the middle of each page after the first (whose header SQLite needs to open the
    file at all): one flipped byte may land on a free page, which an integrity check rightly skips."""
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big") or 65536  # 1 stands for 65,536
    for start in range(page_size, len(data), page_size):
        data[start + page_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def add_future_migration(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('accounts', '9999_future', '2030-01-01')"
        )


def not_a_tar(good: Path, bad: Path) -> None:
    bad.write_bytes(b"this is not a backup\n" * 100)


def cases() -> list[tuple[str, Callable[[Path, Path], None], str]]:
    def later_format(data: dict[str, object]) -> None:
        data["formatVersion"] = 2

    def other_format(data: dict[str, object]) -> None:
        data["format"] = "something-else"

    return [
        ("not a tar file", not_a_tar, "not a tar file"),
        ("no manifest", lambda good, bad: rebuild(good, bad, drop="manifest.json"), "has no manifest.json"),
        ("no database", lambda good, bad: rebuild(good, bad, drop="quell.sqlite3"), "has no quell.sqlite3"),
        (
            "another format",
            lambda good, bad: rebuild(good, bad, manifest=other_format),
            "not a quell-backup manifest",
        ),
        ("a later format", lambda good, bad: rebuild(good, bad, manifest=later_format), "newer Quell"),
        (
            "a changed database",
            lambda good, bad: rebuild(good, bad, database=flip_a_byte, fix_checksum=False),
            "does not match the checksum",
        ),
        (
            "a corrupt database",
            lambda good, bad: rebuild(good, bad, database=corrupt_every_page),
            "integrity|readable",
        ),
        (
            "a newer schema",
            lambda good, bad: rebuild(good, bad, database=add_future_migration),
            "accounts.9999_future",
        ),
    ]


@pytest.mark.parametrize(("case", "spoil", "message"), cases(), ids=[case for case, _, _ in cases()])
def test_a_backup_that_is_not_whole_is_refused_and_nothing_changes(
    new_home: Callable[[str], Path],
    tmp_path: Path,
    case: str,
    spoil: Callable[[Path, Path], None],
    message: str,
) -> None:
    source = new_home("source")
    backup_of(source, tmp_path / "good.tar")
    spoil(tmp_path / "good.tar", tmp_path / "bad.tar")
    target = new_home("target")
    populate(target, incidents=1)
    files = {path.name: sha(path) for path in target.iterdir() if path.is_file()}

    with pytest.raises(BackupError, match=message):
        restore_backup(tmp_path / "bad.tar", target / "quell.sqlite3", data_dir=target)

    assert {path.name: sha(path) for path in target.iterdir() if path.is_file()} == files


def test_the_restore_command_says_what_is_wrong(tmp_path: Path) -> None:
    not_a_tar(tmp_path, tmp_path / "bad.tar")

    missing = quell(tmp_path / "home", "restore", str(tmp_path / "nothing.tar"))
    garbage = quell(tmp_path / "home", "restore", str(tmp_path / "bad.tar"))

    assert missing.returncode == garbage.returncode == 1
    assert "There is no backup file" in missing.stderr
    assert "is not a Quell backup: it is not a tar file" in garbage.stderr
    assert not (tmp_path / "home" / "quell.sqlite3").exists()
