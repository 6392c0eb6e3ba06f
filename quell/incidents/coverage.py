"""Which checks each incident covers (IncidentCheck), kept as results are linked."""

from __future__ import annotations

from collections.abc import Iterable

from quell.catalog.models import CheckResult
from quell.incidents.models import IncidentCheck


def cover(incident_id: int, results: Iterable[CheckResult]) -> None:
    """Note that the incident covers these results' checks (those it covers already are skipped)."""
    check_ids = sorted({result.check_ref_id for result in results})
    IncidentCheck.objects.bulk_create(
        (IncidentCheck(incident_id=incident_id, check_ref_id=check_id) for check_id in check_ids),
        ignore_conflicts=True,
    )
