"""Upgrading from release 0.1.0: its database migrates to this version, and its processes keep serving meanwhile.

tests/fixtures/release-0.1.0 holds a database that release's own code populated (see its README).
The tests restore it into a new database of the kind the suite runs on (SQLite, or PostgreSQL when
QUELL_DATABASE_URL says so), run this version's `quell migrate` as a real process, and talk to real
servers over HTTP: this version's after the upgrade, and the release's own while the migration runs.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "release-0.1.0"
FACTS = json.loads((FIXTURE / "facts.json").read_text())
RELEASE_COMMIT = FACTS["release"]
DEMO_PASSWORD = "quell-demo"
DEMO_LOGINS = [
    "admin@quell.example",
    "marco@quell.example",
    "elena@quell.example",
    "sam@quell.example",
    "vera@quell.example",
    "oscar@quell.example",
]
# Django adds content types and permissions for models that are new in this version; these are the
# only tables whose rows a migration may add to. No table may lose rows.
BOOKKEEPING = {"django_migrations", "django_content_type", "auth_permission", "sqlite_sequence"}

DATASET_COUNTS_KEPT = (
    "SELECT id, check_count, failing_check_count, open_incident_count FROM catalog_dataset ORDER BY id"
)
DATASET_COUNTS_COUNTED = (
    "SELECT d.id, (SELECT COUNT(*) FROM catalog_check c WHERE c.dataset_id = d.id), "
    "(SELECT COUNT(*) FROM catalog_check c WHERE c.dataset_id = d.id AND c.last_outcome IN ('warn', 'fail')), "
    "(SELECT COUNT(DISTINCT x.incident_id) FROM incidents_incidentdataset x JOIN incidents_incident i "
    "ON i.id = x.incident_id WHERE x.dataset_id = d.id AND i.status <> 'resolved') "
    "FROM catalog_dataset d ORDER BY d.id"
)

# What must survive the upgrade, read with plain SQL so that neither version's models are involved.
KEY_FACTS = {
    "incidents": "SELECT number, status, severity, title, lead_id, reporter_id, version, resolution_notes "
    "FROM incidents_incident ORDER BY number",
    "timelines": "SELECT incident_id, kind, field, old_value, new_value, text, actor_id, check_result_id, "
    "created_at FROM incidents_timelineevent ORDER BY id",
    "linked results": "SELECT incident_id, check_result_id FROM incidents_incidentcheckresult "
    "ORDER BY incident_id, check_result_id",
    "incident datasets": "SELECT incident_id, dataset_id FROM incidents_incidentdataset "
    "ORDER BY incident_id, dataset_id",
    "users": "SELECT email, password, global_role, is_active FROM accounts_user ORDER BY email",
    "responsibilities": "SELECT dataset_id, user_id, group_id, role_id FROM catalog_responsibility ORDER BY id",
    "deliveries": "SELECT id, status, attempts, integration_id, event_id FROM integrations_delivery ORDER BY id",
    "incident links": "SELECT incident_id, integration_id, url, text FROM integrations_incidentlink ORDER BY id",
    "api keys": "SELECT key_id, secret_hash FROM accounts_apikey ORDER BY key_id",
}


# --- A database restored from the fixture ----------------------------------------------------------


@dataclass
class ReleaseDatabase:
    vendor: str
    data_dir: Path
    url: str | None = None
    facts: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUELL_", "PYTHONPATH", "DJANGO_"))}
        env["QUELL_DATA_DIR"] = str(self.data_dir)
        env["QUELL_ALLOWED_HOSTS"] = "127.0.0.1"
        if self.url:
            env["QUELL_DATABASE_URL"] = self.url
        env.update(extra)
        return env

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.vendor == "sqlite":
            with sqlite3.connect(self.data_dir / "quell.sqlite3") as db:
                return db.execute(sql).fetchall()
        assert self.url
        with psycopg.connect(self.url) as db:
            return db.execute(sql).fetchall()

    def tables(self) -> list[str]:
        if self.vendor == "sqlite":
            rows = self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%'"
            )
        else:
            rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(name for (name,) in rows)

    def counts(self) -> dict[str, int]:
        # The names come from the database's own catalogue, not from input.
        return {table: self.query(f'SELECT COUNT(*) FROM "{table}"')[0][0] for table in self.tables()}  # noqa: S608

    def key_facts(self) -> dict[str, list[tuple[Any, ...]]]:
        return {name: self.query(sql) for name, sql in KEY_FACTS.items()}

    def quell(self, *args: str) -> subprocess.CompletedProcess[str]:
        """This version's `quell` command, as an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "quell", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def _postgres_server_url() -> str:
    """The suite's PostgreSQL server, as a URL to its maintenance database."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    # A socket directory as host is percent-encoded; libpq and dj-database-url both read it so.
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    return f"postgresql://{credentials}@{host}:{db['PORT'] or 5432}/postgres"


@pytest.fixture
def release_db(tmp_path: Path) -> Iterator[ReleaseDatabase]:
    """A new database holding exactly what release 0.1.0 left in the fixture, of the suite's kind."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if connection.vendor == "sqlite":
        with (
            gzip.open(FIXTURE / "quell.sqlite3.gz") as packed,
            (data_dir / "quell.sqlite3").open("wb") as out,
        ):
            shutil.copyfileobj(packed, out)
        yield ReleaseDatabase("sqlite", data_dir, facts=FACTS["sqlite"])
        return

    server = _postgres_server_url()
    name = f"quell_upgrade_{uuid.uuid4().hex[:10]}"
    url = server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        psql = shutil.which("psql")
        if psql is None:
            pytest.fail("Restoring the PostgreSQL fixture needs psql (apt-get install postgresql-client).")
        with gzip.open(FIXTURE / "quell-postgresql.sql.gz") as dump:
            restored = subprocess.run(
                [psql, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", url],
                input=dump.read(),
                capture_output=True,
                check=False,
            )
        assert restored.returncode == 0, restored.stderr.decode()
        yield ReleaseDatabase("postgresql", data_dir, url=url, facts=FACTS["postgresql"])
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Real servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(db: ReleaseDatabase, *, code: Path | None = None) -> Iterator[str]:
    """A gunicorn serving Quell on the database: this version's code, or the tree at `code`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = {"QUELL_BASE_URL": base}
    if code is not None:
        # The extracted tree comes first on sys.path, ahead of this checkout's installed `quell`.
        extra["PYTHONPATH"] = str(code)
    log = (db.data_dir / f"gunicorn-{port}.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "quell.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--threads", "4", "--graceful-timeout", "5"]
        + (["--chdir", str(code)] if code else []),
        env=db.env(**extra),
        # `python -m` puts the working directory first on sys.path: it decides which `quell` is imported.
        cwd=code or REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(server, base, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        # pytest shows captured output only when the test fails: then the server's tracebacks say why.
        log.seek(0)
        print(f"--- gunicorn on {base} ---\n{log.read()[-20000:]}")
        log.close()


def _wait_until_serving(server: subprocess.Popen[bytes], base: str, log: Any) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read()}")
        try:
            if httpx.get(f"{base}/login/", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log.seek(0)
    pytest.fail(f"gunicorn did not start serving:\n{log.read()}")


@contextmanager
def logged_in(base: str, email: str, password: str = DEMO_PASSWORD) -> Iterator[httpx.Client]:
    """A browser-like client with a session, after the log-in form accepted the password."""
    with httpx.Client(base_url=base, timeout=60) as client:
        client.get("/login/")
        answer = client.post(
            "/login/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        )
        assert answer.status_code == 302, f"{email} could not log in: {answer.status_code}"
        yield client


def api(base: str, db: ReleaseDatabase) -> httpx.Client:
    """The demo admin's API key that release 0.1.0 issued."""
    auth = httpx.BasicAuth(db.facts["apiKeyId"], db.facts["apiKeySecret"])
    return httpx.Client(base_url=f"{base}/api/v1", auth=auth, timeout=60)


def a_failing_result(db: ReleaseDatabase) -> int:
    ((result_id,),) = db.query("SELECT MAX(id) FROM catalog_checkresult WHERE outcome = 'fail'")
    return int(result_id)


# --- Migrating ---------------------------------------------------------------------------------------


def test_a_release_database_migrates_and_keeps_every_row(release_db: ReleaseDatabase) -> None:
    before, facts = release_db.counts(), release_db.key_facts()
    assert before["incidents_incident"] > 300, "the fixture should hold the demo and a loadgen organisation"

    pending = release_db.quell("migrate", "--check")
    migrated = release_db.quell("migrate", "--no-input")
    settled = release_db.quell("migrate", "--check")

    assert pending.returncode != 0, "the release's database should have migrations to apply"
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert settled.returncode == 0, "migrations are still pending after `quell migrate`:\n" + settled.stdout
    after = release_db.counts()
    lost = {t: (n, after.get(t)) for t, n in before.items() if after.get(t) != n and t not in BOOKKEEPING}
    assert not lost, f"row counts changed (before, after): {lost}"
    assert all(after[t] >= before[t] for t in BOOKKEEPING & set(before))
    assert release_db.key_facts() == facts
    # The counts an upgrade adds to each dataset (catalog.0004) are those of its rows.
    kept = release_db.query(DATASET_COUNTS_KEPT)
    assert kept == release_db.query(DATASET_COUNTS_COUNTED)
    assert any(checks and failing and open_ for _, checks, failing, open_ in kept)


def test_this_versions_backup_reads_a_release_database_before_it_migrates(
    release_db: ReleaseDatabase, tmp_path: Path
) -> None:
    # docs/upgrades.md has operators back up with the new version before `quell migrate`.
    if release_db.vendor != "sqlite":
        pytest.skip("`quell backup` is for SQLite; PostgreSQL installations use pg_dump")
    backed_up = release_db.quell("backup", str(tmp_path))

    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    assert "checked" in backed_up.stdout
    assert len(list(tmp_path.glob("quell-backup-*"))) == 1
    assert release_db.quell("migrate", "--check").returncode != 0, "a backup must not migrate"


def test_this_version_serves_a_migrated_release_database(release_db: ReleaseDatabase) -> None:
    migrated = release_db.quell("migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    ((number, title),) = release_db.query("SELECT number, title FROM incidents_incident WHERE number = 1")
    ((total, newest),) = release_db.query("SELECT COUNT(*), MAX(number) FROM incidents_incident")

    with gunicorn(release_db) as base:
        for email in DEMO_LOGINS:
            with logged_in(base, email):
                pass
        with logged_in(base, "admin@quell.example") as browser:
            listing = browser.get("/incidents/")
            page = browser.get(f"/incidents/{number}")
        with api(base, release_db) as admin:
            listed = admin.get("/incidents", params={"size": 5})
            created = admin.post(
                "/incidents",
                json={
                    "title": "Opened after the upgrade",
                    "severity": "minor",
                    "checkResultIds": [a_failing_result(release_db)],
                    # The newest failure may be in an open incident already.
                    "allowDuplicate": True,
                },
            )
            read_back = admin.get(f"/incidents/{created.json().get('id')}")

    assert listing.status_code == 200
    assert re.search(r'href="/incidents/\d+"', listing.text), "the incidents page lists no incident"
    assert page.status_code == 200
    assert html.escape(str(title)) in page.text
    assert listed.status_code == 200
    assert listed.json()["totalElements"] == total
    assert created.status_code == 201, created.text
    assert created.json()["number"] == newest + 1
    assert read_back.status_code == 200
    assert read_back.json()["title"] == "Opened after the upgrade"


# --- Migrating while the release serves --------------------------------------------------------------


@pytest.fixture(scope="session")
def release_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Release 0.1.0's source, from this repository's history."""
    known = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{RELEASE_COMMIT}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if known.returncode != 0:
        pytest.fail(
            f"Release commit {RELEASE_COMMIT} is not in {REPO}'s git history; the upgrade test runs the "
            "release's code. Run the suite in a full clone (git fetch --unshallow)."
        )
    tree = tmp_path_factory.mktemp("quell-0.1.0")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", RELEASE_COMMIT], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


@dataclass
class Traffic:
    """Threads doing what users do (list, read, open incidents) until told to stop.

    Each thread first warms up: it logs in and does one clean round, retrying a few times. What
    the release does on a cold worker is not what this test is about (release 0.1.0 cannot be
    changed), and one CI run saw three of the release's first requests fail at once before the
    migration began; such failures are kept apart, in `warm_up_failures`, and printed. From the
    moment every thread has done a clean round, every failure counts.
    """

    base: str
    db: ReleaseDatabase
    threads: int = 4
    failures: list[str] = field(default_factory=list)
    warm_up_failures: list[str] = field(default_factory=list)
    requests: int = 0
    created: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    warmed_up: threading.Barrier | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    WARM_UP_TRIES = 5

    def start(self) -> None:
        self.warmed_up = threading.Barrier(self.threads + 1)
        result_id = a_failing_result(self.db)
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n, result_id), daemon=True)
            worker.start()
            self._workers.append(worker)
        # Every thread has done one full clean round before the migration starts.
        try:
            self.warmed_up.wait(timeout=120)
        except threading.BrokenBarrierError:
            self.finish()
            pytest.fail(
                "the release did not serve before the migration:\n"
                + "\n".join(self.warm_up_failures + self.failures)
            )
        if self.warm_up_failures:
            print("failures while warming up, before the migration:\n" + "\n".join(self.warm_up_failures))

    def finish(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=120)

    def _check(
        self, what: str, response: httpx.Response, expected: int = 200, *, warming: bool = False
    ) -> httpx.Response:
        with self._lock:
            self.requests += 1
            if response.status_code != expected:
                failed = f"{what}: {response.status_code} {response.text[:300]}"
                (self.warm_up_failures if warming else self.failures).append(failed)
        return response

    def _warm_up(self, n: int, result_id: int, client: httpx.Client) -> httpx.Client:
        """A logged-in browser, after one round in which every request succeeded."""
        for attempt in range(1, self.WARM_UP_TRIES + 1):
            browser = httpx.Client(base_url=self.base, timeout=60)
            try:
                page = browser.get("/login/")
                answer = browser.post(
                    "/login/",
                    data={
                        "email": "admin@quell.example",
                        "password": DEMO_PASSWORD,
                        "csrfmiddlewaretoken": page.cookies.get("csrftoken", ""),
                    },
                )
                self._check("log in", answer, 302, warming=True)
                if answer.status_code == 302 and self._round(n, result_id, client, browser, warming=True):
                    return browser
            except httpx.HTTPError as error:
                with self._lock:
                    self.warm_up_failures.append(f"thread {n}: {type(error).__name__}: {error}")
            browser.close()
            if attempt < self.WARM_UP_TRIES:
                time.sleep(0.5 * attempt)
        raise RuntimeError(f"no clean round in {self.WARM_UP_TRIES} tries")

    def _run(self, n: int, result_id: int) -> None:
        assert self.warmed_up is not None
        try:
            with api(self.base, self.db) as client, closing(self._warm_up(n, result_id, client)) as browser:
                self.warmed_up.wait(timeout=120)
                while True:
                    # A round begun after the migration finished shows the release working on the new schema.
                    last = self.stop.is_set()
                    self._round(n, result_id, client, browser)
                    if last:
                        return
        except Exception as error:
            with self._lock:
                self.failures.append(f"thread {n}: {type(error).__name__}: {error}")
            self.warmed_up.abort()

    def _round(
        self, n: int, result_id: int, client: httpx.Client, browser: httpx.Client, *, warming: bool = False
    ) -> bool:
        """One round of requests; whether every one succeeded."""
        before = len(self.warm_up_failures) + len(self.failures)
        listed = self._check("list", client.get("/incidents", params={"size": 20}), warming=warming)
        if listed.status_code == 200:
            newest = listed.json()["content"][0]
            self._check("read", client.get(f"/incidents/{newest['id']}"), warming=warming)
            self._check("page", browser.get(f"/incidents/{newest['number']}"), warming=warming)
        made = self._check(
            "create",
            # Every round opens another incident from the same result: on purpose (the release
            # before allowDuplicate ignores it).
            client.post(
                "/incidents",
                json={
                    "title": f"During the upgrade ({n})",
                    "checkResultIds": [result_id],
                    "allowDuplicate": True,
                },
            ),
            expected=201,
            warming=warming,
        )
        if made.status_code == 201:
            with self._lock:
                self.created += 1
        return len(self.warm_up_failures) + len(self.failures) == before


def test_the_release_keeps_serving_while_this_version_migrates(
    release_db: ReleaseDatabase, release_code: Path
) -> None:
    (incidents_before,) = release_db.query("SELECT COUNT(*) FROM incidents_incident")[0]

    with gunicorn(release_db, code=release_code) as base:
        traffic = Traffic(base, release_db)
        traffic.start()
        during = traffic.requests
        migrated = release_db.quell("migrate", "--no-input")
        traffic.finish()

    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert not traffic.failures, "requests to the release failed during the migration:\n" + "\n".join(
        traffic.failures[:20]
    )
    assert traffic.requests > during
    assert release_db.quell("migrate", "--check").returncode == 0
    (incidents_after,) = release_db.query("SELECT COUNT(*) FROM incidents_incident")[0]
    assert incidents_after == incidents_before + traffic.created
