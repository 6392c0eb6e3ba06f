"""`quell serve`: the production web server, gunicorn with N processes running Quell.

It never migrates: schema changes are the operator's step (`quell migrate`, once per upgrade, from one
machine). A server whose code expects migrations the database lacks would fail on some pages only, so
it refuses to start and says what to run instead. Static files are collected first when they changed
(see quell.web.staticfiles), so a plain `pip install` upgrade followed by a restart serves new assets.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from quell.lib.env import envint, envstr
from quell.web.gunicorn_conf import QuellWebServer, ServeOptions
from quell.web.staticfiles import use_collected_static_files

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
DEFAULT_TIMEOUT = 30
HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


def check_bind(bind: str) -> str:
    if bind.startswith("unix:") and len(bind) > len("unix:"):
        return bind
    match = HOST_PORT.match(bind)
    if not match or not 0 <= int(match["port"]) <= 65535:
        raise CommandError(f"--bind must be HOST:PORT (or unix:PATH), not {bind!r}.")
    return bind


def pending_migrations() -> list[str]:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        raise CommandError(f"Cannot read the database's migration state: {error}") from None
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]


class Command(BaseCommand):
    help = (
        "Run Quell's web server (gunicorn) with several processes. It does not migrate: run "
        "`quell migrate` first. Defaults come from QUELL_WEB_BIND, QUELL_WEB_WORKERS, QUELL_WEB_THREADS "
        "and QUELL_WEB_TIMEOUT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", help=f"HOST:PORT or unix:PATH to listen on (default {DEFAULT_BIND}).")
        parser.add_argument("--workers", type=int, help=f"Web processes (default {DEFAULT_WORKERS}).")
        parser.add_argument(
            "--threads",
            type=int,
            help=f"Threads per process (default {DEFAULT_THREADS}); 1 for sync workers.",
        )
        parser.add_argument(
            "--timeout",
            type=int,
            help=f"Seconds before a stuck request's process is restarted (default {DEFAULT_TIMEOUT}); "
            "also how long a stopping server waits for requests in flight.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        serve = self.serve_options(options)
        pending = pending_migrations()
        if pending:
            shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
            raise CommandError(
                f"The database needs {len(pending)} migration(s) this version of Quell expects ({shown}). "
                "Run `quell migrate` once, then start the server again."
            )
        try:
            use_collected_static_files(self.say)
        except OSError as error:
            raise CommandError(
                f"Could not collect static files ({error}). Run `quell collectstatic` as a user that may "
                "write QUELL_STATIC_ROOT, then start the server again."
            ) from None
        connections.close_all()
        self.say(
            f"Quell web server on {serve.bind}: {serve.workers} process(es) x {serve.threads} thread(s)."
        )
        QuellWebServer(serve).run()

    def serve_options(self, options: dict[str, Any]) -> ServeOptions:
        counts: dict[str, int] = {}
        for name, default in (
            ("workers", DEFAULT_WORKERS),
            ("threads", DEFAULT_THREADS),
            ("timeout", DEFAULT_TIMEOUT),
        ):
            variable = f"QUELL_WEB_{name.upper()}"
            try:
                value = options[name] if options[name] is not None else envint(variable, default)
            except ValueError as error:
                raise CommandError(str(error)) from None
            if value < 1:
                source = f"--{name}" if options[name] is not None else variable
                raise CommandError(f"{source} must be at least 1, not {value}.")
            counts[name] = value
        workers, threads, timeout = counts["workers"], counts["threads"], counts["timeout"]
        return ServeOptions(
            bind=check_bind(options["bind"] or envstr("QUELL_WEB_BIND", DEFAULT_BIND)),
            workers=workers,
            threads=threads,
            timeout=timeout,
            graceful_timeout=timeout,
            log_level=envstr("QUELL_LOG_LEVEL", "INFO"),
        )

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
