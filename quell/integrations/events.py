"""Recording events for integrations, inside the transaction of the change that causes them.

Incident and catalog services call these while their transaction is open, so an event exists if and
only if its change was committed; the deliveries and the tasks that send them commit with it. With
no integration interested, nothing is written (one query).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from quell.accounts.models import User
from quell.catalog.models import FAILING_OUTCOMES, CheckResult, Scan
from quell.incidents.models import Incident, IncidentDataset, IncidentRule, TimelineEvent
from quell.incidents.mutes import muted_check_ids
from quell.integrations import payloads
from quell.integrations.models import (
    OUTCOME_RANK,
    SEVERITY_RANK,
    Delivery,
    Event,
    EventType,
    Integration,
)

# The incident changes that notify (gap 6: one message per change of state, not per keystroke);
# title and description edits alone do not. `merged`: others were merged into the incident
# (quell.incidents.merging), even when they brought no result it lacked.
NOTIFYING_FIELDS = {"status", "lead", "severity", "resolutionNotes", "resolutionReason", "merged"}


def subscribers(event_type: str) -> list[Integration]:
    """The enabled integrations that want `event_type`, each with the datasets it is limited to."""
    integrations = [i for i in Integration.objects.filter(enabled=True) if event_type in i.events]
    if integrations:
        through = Integration.datasets.through.objects.filter(integration_id__in=[i.pk for i in integrations])
        filters: dict[int, set[int]] = defaultdict(set)
        for integration_id, dataset_id in through.values_list("integration_id", "dataset_id"):
            filters[integration_id].add(dataset_id)
        for integration in integrations:
            integration.dataset_filter = filters.get(integration.pk, set())  # type: ignore[attr-defined]
    return integrations


def _covers(integration: Integration, dataset_ids: set[int]) -> bool:
    wanted: set[int] = integration.dataset_filter  # type: ignore[attr-defined]
    return not wanted or bool(wanted & dataset_ids)


def _severe_enough(integration: Integration, *severities: str) -> bool:
    if not integration.min_severity:
        return True
    floor = SEVERITY_RANK[integration.min_severity]
    return any(SEVERITY_RANK.get(severity, 0) >= floor for severity in severities)


def _record(
    event_type: str, payload: dict[str, Any], integrations: Sequence[Integration], incident: Incident | None
) -> Event:
    from quell.integrations.delivery import enqueue_new

    now = timezone.now()
    event = Event.objects.create(
        message_id=Event.new_message_id(), type=event_type, incident=incident, payload=payload, created_at=now
    )
    give_up_at = now + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            event=event,
            integration=integration,
            incident=incident,
            next_attempt_at=now,
            give_up_at=give_up_at,
            created_at=now,
        )
        for integration in integrations
    )
    enqueue_new(deliveries)
    return event


def _changes(events: Iterable[TimelineEvent]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = [
        {"field": e.field, "old": e.old_value, "new": e.new_value} for e in events if e.field
    ]
    lead_ids = {value for c in changes if c["field"] == "lead" for value in (c["old"], c["new"]) if value}
    if lead_ids:
        people = {user.pk: payloads.person(user) for user in User.objects.filter(pk__in=lead_ids)}
        for change in changes:
            if change["field"] == "lead":
                change["old"], change["new"] = people.get(change["old"]), people.get(change["new"])
    return changes


def record_incident_event(
    incident: Incident,
    event_type: str,
    *,
    by: User | None,
    changes: Iterable[TimelineEvent] = (),
    results: Iterable[CheckResult] = (),
    dataset_ids: Iterable[int] | None = None,
    rule: IncidentRule | None = None,
    integrations: Sequence[Integration] | None = None,
) -> Event | None:
    """Record incidentCreated or incidentUpdated for every integration that wants it.

    `changes` are the timeline events of an edit, `results` the check results just attached,
    `dataset_ids` the incident's datasets after the change when the caller has them at hand (they
    are read otherwise), `rule` the incident rule Quell acted for (`by` is then the system user),
    `integrations` who listens when the caller read it once for many incidents (subscribers()).
    Must be called inside the transaction that made the change.
    """
    assert event_type in (EventType.INCIDENT_CREATED, EventType.INCIDENT_UPDATED), event_type
    assert transaction.get_connection().in_atomic_block, "record events in the change's transaction"
    if integrations is None:
        integrations = subscribers(event_type)
    if not integrations:
        return None
    changed = _changes(changes)
    added = [result.pk for result in results]
    notifying = added or any(change["field"] in NOTIFYING_FIELDS for change in changed)
    if event_type == EventType.INCIDENT_UPDATED and not notifying:
        return None
    if dataset_ids is None:
        dataset_ids = IncidentDataset.objects.filter(incident=incident).values_list("dataset_id", flat=True)
    dataset_ids = set(dataset_ids)
    severities = [incident.severity] + [str(c["old"]) for c in changed if c["field"] == "severity"]
    wanted = [i for i in integrations if _covers(i, dataset_ids) and _severe_enough(i, *severities)]
    if not wanted:
        return None
    payload: dict[str, Any] = {"event": event_type, "incident": payloads.incident_payload(incident)}
    if event_type == EventType.INCIDENT_UPDATED:
        payload["changes"] = changed
        payload["addedCheckResults"] = added
    payload["changedBy"] = payloads.person(by)
    # Quell's own field: the rule behind a change by Quell itself (changedBy); null otherwise.
    payload["changedByRule"] = payloads.rule_ref(rule)
    return _record(event_type, payload, wanted, incident)


def record_check_evaluation(scan: Scan, results: Iterable[CheckResult], *, by: User | None) -> list[Event]:
    """Record checkEvaluation for a scan's warn and fail results: one event per dataset.

    Results of muted checks are left out (a mute means no event about them), and a scan whose
    failing checks are all muted records nothing. Must be called inside the transaction that stored
    the results.
    """
    assert transaction.get_connection().in_atomic_block, "record events in the change's transaction"
    failing = [result for result in results if result.outcome in FAILING_OUTCOMES]
    if not failing:
        return []
    integrations = subscribers(EventType.CHECK_EVALUATION)
    if not integrations:
        return []
    # Asked only when someone listens: a scan nobody hears of costs no statement more.
    muted = muted_check_ids({(result.check_ref_id, result.dataset_id) for result in failing})
    failing_ids = [result.pk for result in failing if result.check_ref_id not in muted]
    if not failing_ids:
        return []
    by_dataset: dict[int, list[CheckResult]] = defaultdict(list)
    rows = (
        CheckResult.objects.filter(pk__in=failing_ids)
        .select_related(*payloads.RESULT_RELATIONS)
        .order_by("id")
    )
    for row in rows:
        by_dataset[row.dataset_id].append(row)
    events = []
    for dataset_id, found in sorted(by_dataset.items()):
        worst = max(OUTCOME_RANK[result.outcome] for result in found)
        wanted = [
            i
            for i in integrations
            if _covers(i, {dataset_id}) and worst >= OUTCOME_RANK.get(i.min_outcome, 0)
        ]
        if not wanted:
            continue
        shown = found[: payloads.MAX_RESULTS]
        payload = {
            "event": EventType.CHECK_EVALUATION.value,
            "checkResults": payloads.check_results_payload(shown),
            "checkResultCount": len(found),
            "scan": {"id": scan.pk, "definitionName": scan.definition_name, "state": scan.state},
            "changedBy": payloads.person(by),
        }
        events.append(_record(EventType.CHECK_EVALUATION, payload, wanted, None))
    return events


def record_validate(integration: Integration, *, by: User) -> Delivery:
    """A test message for one integration (the "Send test" button)."""
    payload = {
        "event": EventType.VALIDATE.value,
        "sentAt": payloads.timestamp(timezone.now()),
        "changedBy": payloads.person(by),
    }
    with transaction.atomic():
        event = _record(EventType.VALIDATE, payload, [integration], None)
        delivery = event.deliveries.get()
        Delivery.objects.filter(pk=delivery.pk).update(requested_by=by)
        delivery.requested_by = by
    return delivery
