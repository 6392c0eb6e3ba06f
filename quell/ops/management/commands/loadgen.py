"""`quell loadgen --incidents N`: fill an empty database with a realistic organisation for benchmarks."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quell.ops import loadgen


class Command(BaseCommand):
    help = "Fill the database with realistic data for benchmarks: incidents, checks, a year of results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--incidents", type=int, required=True, help="How many incidents to create.")
        parser.add_argument("--days", type=int, default=365, help="Days of daily results per check.")
        parser.add_argument("--seed", type=int, default=1, help="Seed for the random choices.")
        parser.add_argument(
            "--append", action="store_true", help="Add to a database that already holds incidents."
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not draw progress bars.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["incidents"] < 1:
            raise CommandError("--incidents must be at least 1.")
        if options["days"] < 7:
            raise CommandError("--days must be at least 7, so checks have a history to fail in.")
        scale = loadgen.Scale(incidents=options["incidents"], days=options["days"])
        self.stdout.write(f"Generating {loadgen.describe(scale)}.")
        try:
            summary = loadgen.generate(
                scale,
                seed=options["seed"],
                append=options["append"],
                progress=not options["no_progress"] and sys.stderr.isatty(),
            )
        except loadgen.LoadgenRefused as refused:
            raise CommandError(str(refused)) from refused
        for label, count in summary.counts.items():
            self.stdout.write(f"  {label:<22} {count:>12,}")
        self.stdout.write(
            self.style.SUCCESS(f"Done. Admin: {summary.admin_email} (create a key with `quell apikey`).")
        )
