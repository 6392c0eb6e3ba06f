"""Which checks each incident covers (IncidentCheck), kept as results are linked."""

from __future__ import annotations

from collections.abc import Iterable

from quell.catalog.models import CheckResult
from quell.incidents.models import IncidentCheck
from quell.lib.bulk import insert_rows


def cover(covered: Iterable[tuple[int, Iterable[CheckResult]]]) -> None:
    """Note that each incident covers its results' checks (incident id -> results), in one statement;
    those it covers already are skipped."""
    rows = sorted(
        {(incident_id, result.check_ref_id) for incident_id, results in covered for result in results}
    )
    insert_rows(IncidentCheck, {}, ("incident_id", "check_ref_id"), rows, ignore_conflicts=True)
