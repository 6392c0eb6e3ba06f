"""Integrations hear of incidents and check results through the domain events (quell.lib.events).

Each handler writes the events and deliveries of the subscribed integrations into the outbox, in
the change's transaction: a change that rolls back announces nothing, and one that commits is
delivered by the worker even if this process dies right after. Subscribed in IntegrationsConfig.ready.
"""

from __future__ import annotations

from collections.abc import Sequence

from quell.catalog.events import ResultsIngested
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.integrations import events
from quell.integrations.models import EventType
from quell.lib.events import handles, handles_batch


@handles_batch(IncidentCreated)
def announce_the_new_incidents(created: Sequence[IncidentCreated]) -> None:
    # Who listens is read once for all the incidents a service opened together.
    listening = events.subscribers(EventType.INCIDENT_CREATED)
    for event in created if listening else ():
        events.record_incident_event(
            event.incident,
            EventType.INCIDENT_CREATED,
            by=event.by,
            dataset_ids=event.dataset_ids,
            rule=event.rule,
            integrations=listening,
        )


@handles_batch(IncidentChanged)
def announce_the_changes(changed: Sequence[IncidentChanged]) -> None:
    listening = events.subscribers(EventType.INCIDENT_UPDATED)
    for event in changed if listening else ():
        events.record_incident_event(
            event.incident,
            EventType.INCIDENT_UPDATED,
            by=event.by,
            changes=event.changes,
            results=event.added_results,
            dataset_ids=event.dataset_ids,
            rule=event.rule,
            integrations=listening,
        )


@handles(ResultsIngested)
def announce_the_evaluation(event: ResultsIngested) -> None:
    events.record_check_evaluation(event.scan, event.results, by=event.by)
