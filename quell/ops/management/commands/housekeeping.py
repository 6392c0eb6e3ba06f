from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quell.ops.housekeeping import BATCH_SIZE, run_housekeeping


class Command(BaseCommand):
    help = (
        "Apply the organisation's retention settings now. It deletes old check results, scans, "
        "failed-row samples and delivery logs, expired tokens and stale rows, in small batches. `quell worker` "
        "does this every QUELL_HOUSEKEEPING_SECONDS on its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="Rows per transaction (default %(default)s)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = run_housekeeping(dry_run=options["dry_run"], batch_size=options["batch_size"])
        for line in report.lines():
            self.stdout.write(line)
        if report.dry_run:
            self.stdout.write(f"Dry run: nothing was deleted ({report.total} rows would be).")
        else:
            self.stdout.write(f"Done: {report.total} rows in {report.transactions} transactions.")
