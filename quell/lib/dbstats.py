"""Planner statistics and settings: SQLite's query planner chooses indexes well only once ANALYZE has run.

Without sqlite_stat1 SQLite guesses, and at 10,000 incidents its guesses made list pages take
half a second (docs/performance.md). PostgreSQL's autovacuum keeps its statistics itself.
"""

from __future__ import annotations

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper


def refresh_planner_statistics(*, full: bool = False) -> None:
    """Bring the planner's statistics up to date: ANALYZE on SQLite, table by table.

    Exact statistics, not `PRAGMA analysis_limit` samples: at 1,000,000 incidents sampled ones
    were inconsistent enough between indexes that SQLite chose to sort the whole table for the
    first page of a list. Each table is analysed in its own transaction, so a writer waits for
    one table at most (about a second per 1,000,000 rows here), well within the busy timeout.
    On PostgreSQL only a `full` refresh does anything (ANALYZE after a bulk load, sooner than
    autovacuum would); otherwise autovacuum's statistics are left alone.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit=0")
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
            )
            tables = [row[0] for row in cursor.fetchall()]
            for table in tables:
                cursor.execute(f'ANALYZE "{table}"')
            cursor.execute("PRAGMA optimize")
        elif full:
            cursor.execute("ANALYZE")


def without_jit(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """On each new PostgreSQL connection, turn off JIT compilation (connection_created handler).

    Quell's statements are short, but some are estimated as costly (the home page's correlated
    counts over every failing dataset: a cost of 557,000 where it runs in 37 ms), and above
    `jit_above_cost` PostgreSQL compiled them first: 0.5 s per home page view at 1,000,000
    incidents. A SET rather than a libpq `options` startup parameter, which PgBouncer refuses.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")
