"""The status tallies follow every incident and responsibility change, in the change's transaction.

Subscribed at start-up (IncidentsConfig.ready). A tally that fails to move raises, and the change
rolls back with it: the counts the Incidents page shows never drift from the incidents.
"""

from __future__ import annotations

from quell.catalog.events import ResponsibilitiesChanged
from quell.incidents import coverage, tallies
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.lib.events import handles


@handles(IncidentCreated)
def count_the_new_incident(event: IncidentCreated) -> None:
    tallies.incident_created(sorted(event.dataset_ids), (event.incident.status, event.incident.severity))


@handles(IncidentCreated)
def note_the_checks_of_the_new_incident(event: IncidentCreated) -> None:
    coverage.cover(event.incident.pk, event.results)


@handles(IncidentChanged)
def note_the_checks_of_added_results(event: IncidentChanged) -> None:
    if event.added_results:
        coverage.cover(event.incident.pk, event.added_results)


@handles(IncidentChanged)
def move_the_incident_between_tallies(event: IncidentChanged) -> None:
    before = (event.status_before, event.severity_before)
    after = (event.incident.status, event.incident.severity)
    if before != after:
        tallies.bucket_changed(sorted(event.dataset_ids_before), before, after)
    if event.dataset_ids != event.dataset_ids_before:
        tallies.datasets_changed(event.dataset_ids_before, event.dataset_ids, after)


@handles(ResponsibilitiesChanged)
def recount_who_sees_the_dataset(event: ResponsibilitiesChanged) -> None:
    # Whether Everyone can view the dataset may have changed, and with it who counts its incidents.
    tallies.visibility_changed([event.dataset_id])
