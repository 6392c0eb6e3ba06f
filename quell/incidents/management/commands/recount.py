from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from quell.catalog import counters
from quell.incidents import tallies
from quell.incidents.models import OPEN_STATUSES


class Command(BaseCommand):
    help = (
        "Recount the counters Quell keeps instead of counting on every page view. They are incidents per "
        "status and severity, and each dataset's checks, failing checks and open incidents. Run it after "
        "writing rows behind Quell's back (bulk loads, a restore of part of the data), or after an "
        "upgrade that adds counters while the previous release was still serving (docs/upgrades.md). "
        "Incident writes wait while it runs: about a minute at 1,000,000 incidents."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        tallies.rebuild()
        with transaction.atomic():
            counters.recount_all(OPEN_STATUSES)
        self.stdout.write("Recounted incidents per status and severity, and every dataset's counts.")
