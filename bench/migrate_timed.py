"""Time `quell migrate` on a big database and probe, once a second, whether reads and writes get through.

    QUELL_DATABASE_URL=... .venv/bin/python bench/migrate_timed.py /tmp/migrate.log

Each probe reads the newest incident and, in a transaction it rolls back, updates the oldest one,
each with a 2 s lock timeout, so the log says whether (and for how long) the migration held locks
that a running Quell would wait on. The migration's own output goes to the same log.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

READ = "SELECT id FROM incidents_incident ORDER BY id DESC LIMIT 1"
WRITE = "UPDATE incidents_incident SET version = version WHERE id = (SELECT min(id) FROM incidents_incident)"


def _probes(url: str) -> tuple[Callable[[], None], Callable[[], None]]:
    if url.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(url, autocommit=True)

        def pg_read() -> None:
            conn.execute("SET lock_timeout = '2s'")
            conn.execute(READ).fetchone()

        def pg_write() -> None:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(WRITE)
                raise psycopg.Rollback()

        return pg_read, pg_write
    path = (
        url.removeprefix("sqlite:///") if url else str(Path(os.environ["QUELL_DATA_DIR"]) / "quell.sqlite3")
    )
    db = sqlite3.connect(path, timeout=2, isolation_level=None)

    def sqlite_read() -> None:
        db.execute(READ).fetchone()

    def sqlite_write() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute(WRITE)
        db.execute("ROLLBACK")

    return sqlite_read, sqlite_write


def main() -> None:
    log: TextIO = open(sys.argv[1], "a")  # noqa: SIM115 - open for the whole run

    def say(message: str) -> None:
        log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        log.flush()

    url = os.environ.get("QUELL_DATABASE_URL", "")
    read, write = _probes(url)
    say(f"migrate start on {url or 'the default SQLite file'}")
    started = time.monotonic()
    # The command is this interpreter running Quell's own migrate.
    proc = subprocess.Popen([sys.executable, "-m", "quell", "migrate", "-v", "2"], stdout=log, stderr=log)
    blocked = {"read": 0, "write": 0}
    probes = 0
    while proc.poll() is None:
        probes += 1
        for name, probe in (("read", read), ("write", write)):
            began = time.monotonic()
            try:
                probe()
            except Exception as error:  # any failure to get through is what the probe records
                blocked[name] += 1
                say(
                    f"{name} blocked after {time.monotonic() - began:.1f} s: {str(error).splitlines()[0][:120]}"
                )
        time.sleep(1)
    say(
        f"migrate exit {proc.returncode} after {time.monotonic() - started:.0f} s; "
        f"{probes} probes, blocked: {blocked}"
    )


if __name__ == "__main__":
    main()
