"""The PostgreSQL backup practice docs/operations.md gives works: pg_dump, pg_restore, quell migrate.

On PostgreSQL `quell backup` refuses and points operators at these commands, so they are run here
exactly as documented, on a database this version migrated from release 0.1.0's fixture.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.test_upgrade import KEY_FACTS, ReleaseDatabase, _postgres_server_url, release_db

__all__ = ["release_db"]  # the fixture, used by name below

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="pg_dump and pg_restore are PostgreSQL's; SQLite has `quell backup`",
)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed (apt-get install postgresql-client).")
    return path


def test_a_documented_pg_dump_restores_into_a_new_database_with_every_row(
    release_db: ReleaseDatabase, tmp_path: Path
) -> None:
    assert release_db.quell("migrate").returncode == 0
    dump = tmp_path / "quell.dump"
    assert release_db.url

    dumped = subprocess.run(
        [tool("pg_dump"), "--format=custom", f"--file={dump}", release_db.url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert dumped.returncode == 0, dumped.stderr

    server = _postgres_server_url()
    name = f"quell_restored_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        restored_db = ReleaseDatabase("postgresql", tmp_path, url=server.rsplit("/", 1)[0] + "/" + name)
        restored = subprocess.run(
            [tool("pg_restore"), f"--dbname={restored_db.url}", "--no-owner", "--exit-on-error", str(dump)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert restored.returncode == 0, restored.stderr

        assert restored_db.counts() == release_db.counts()
        for name_of_fact, sql in KEY_FACTS.items():
            assert restored_db.query(sql) == release_db.query(sql), name_of_fact
        nothing_pending = restored_db.quell("migrate", "--check")
        assert nothing_pending.returncode == 0, nothing_pending.stdout + nothing_pending.stderr
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
