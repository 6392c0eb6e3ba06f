"""Settings Quell gives each database connection."""

from __future__ import annotations

import pytest
from django.db import connection, connections


@pytest.mark.django_db
def test_a_new_postgresql_connection_compiles_no_statement_just_in_time() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("JIT compilation is PostgreSQL's")
    # A connection of its own, as each web thread and worker opens one.
    fresh = connections.create_connection("default")
    try:
        with fresh.cursor() as cursor:
            cursor.execute("SHOW jit")
            (jit,) = cursor.fetchone()
    finally:
        fresh.close()

    assert jit == "off"


@pytest.mark.django_db
def test_a_new_sqlite_connection_writes_ahead_and_waits_for_the_write_lock() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's settings")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        (journal,) = cursor.fetchone()
        cursor.execute("PRAGMA busy_timeout")
        (busy_ms,) = cursor.fetchone()

    assert journal == "wal"
    assert busy_ms >= 5000
