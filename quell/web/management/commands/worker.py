from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from quell.ops import heartbeat
from quell.ops.periodic import start_periodic


class Command(BaseCommand):
    help = (
        "Run the task worker: background tasks, deliveries, heartbeats and housekeeping. It is "
        "django-tasks-db's db_worker with Quell's defaults, plus the periodic jobs: the delivery sweep "
        "that recovers deliveries of workers that died, heartbeats, housekeeping."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between polls when idle.")
        parser.add_argument("--batch", action="store_true", help="Exit once the queue is empty.")

    def handle(self, *args: Any, **options: Any) -> None:
        extra = ["--batch"] if options["batch"] else []
        stop_periodic = None
        if not options["batch"]:
            # django-tasks-db neither retries nor reaps the tasks of a killed worker; the delivery
            # sweep does, among the periodic jobs (quell.ops.periodic) of a thread that ends with the process.
            stop_periodic = start_periodic()
        try:
            call_command("db_worker", "--queue-name", "*", "--interval", str(options["interval"]), *extra)
        finally:
            # db_worker leaves by SystemExit on SIGTERM; a clean exit takes this worker off /readyz at once.
            if stop_periodic is not None:
                stop_periodic.set()
                heartbeat.stop()
