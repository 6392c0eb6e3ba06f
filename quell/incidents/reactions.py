"""The status tallies follow every incident and responsibility change, in the change's transaction.

Subscribed at start-up (IncidentsConfig.ready). A tally that fails to move raises, and the change
rolls back with it: the counts the Incidents page shows never drift from the incidents. Each takes
the events a service recorded together (quell.lib.events.record_all), so the incidents a scan
opens or folds into are counted and covered in a few statements, not a few per incident.
"""

from __future__ import annotations

from collections.abc import Sequence

from quell.catalog.events import ResponsibilitiesChanged
from quell.incidents import coverage, tallies
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.lib.events import handles, handles_batch


@handles_batch(IncidentCreated)
def count_the_new_incidents(events: Sequence[IncidentCreated]) -> None:
    tallies.incidents_created(
        [(event.dataset_ids, (event.incident.status, event.incident.severity)) for event in events]
    )


@handles_batch(IncidentCreated)
def note_the_checks_of_the_new_incidents(events: Sequence[IncidentCreated]) -> None:
    coverage.cover([(event.incident.pk, event.results) for event in events])


@handles_batch(IncidentChanged)
def note_the_checks_of_added_results(events: Sequence[IncidentChanged]) -> None:
    coverage.cover([(event.incident.pk, event.added_results) for event in events if event.added_results])


@handles_batch(IncidentChanged)
def move_the_incidents_between_tallies(events: Sequence[IncidentChanged]) -> None:
    tallies.buckets_changed(
        [
            (event.dataset_ids_before, (event.status_before, event.severity_before), _bucket(event))
            for event in events
        ]
    )
    for event in events:
        # Rare (results of another dataset attached, a merge): one at a time.
        if event.dataset_ids != event.dataset_ids_before:
            tallies.datasets_changed(event.dataset_ids_before, event.dataset_ids, _bucket(event))


def _bucket(event: IncidentChanged) -> tallies.Bucket:
    return (event.incident.status, event.incident.severity)


@handles(ResponsibilitiesChanged)
def recount_who_sees_the_dataset(event: ResponsibilitiesChanged) -> None:
    # Whether Everyone can view the dataset may have changed, and with it who counts its incidents.
    tallies.visibility_changed([event.dataset_id])
