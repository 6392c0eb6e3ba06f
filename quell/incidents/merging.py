"""Writing several incidents at once: merging duplicates into one, and the same change to many.

merge_incidents is all-or-nothing: one transaction, every incident checked before anything is written.
change_incidents is the opposite on purpose: each incident is changed (or refused) on its own through
services.update_incident, so one incident the caller may not change does not undo the others, and the
answer says which were refused and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog.models import CheckResult
from quell.incidents import services
from quell.incidents.events import IncidentChanged
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    ResolutionReason,
    Severity,
    Status,
    TimelineEvent,
)
from quell.incidents.queries import check_choices, visible_incidents
from quell.lib import events as domain_events
from quell.lib.errors import Forbidden, Invalid, NotFound, QuellError, Unprocessable

# How many incidents one merge takes in, and one bulk change changes.
MERGED_MAX = 100
BULK_MAX = 200
# What a bulk change may set (services.update_incident's names): no title or description, which
# are each incident's own.
BULK_FIELDS = ("lead_id", "status", "severity", "resolution_reason", "resolution_notes")
# The field of EventKind.MERGED events: so they travel in IncidentChanged.changes (and so in the
# integrations' `changes`) like any changed field, as {"field": "merged", "old": ..., "new": ...}.
MERGED_FIELD = "merged"


def merge_incidents(target_id: int, incident_ids: Sequence[int], *, by: User) -> Incident:
    """Merge the incidents `incident_ids` into the open incident `target_id`; returns the target.

    Every check result and dataset of each merged incident is linked to the target too. The merged
    incidents keep their own links: their pages and history still show what they were about, and
    the target's timeline names them. Each open merged incident is resolved as `duplicate` with the
    note "Merged into #T <title>." through services.update_incident (so its tallies, version,
    timeline and integrations' events are those of any resolution); one already resolved keeps its
    status, reason and note. Both sides' timelines get an EventKind.MERGED event whose `old_value`
    names the merged incident and `new_value` the target ({"id", "number", "title"}), and whose
    `text` is the other incident's "#N title". The target's version goes up once, and its
    IncidentChanged carries the MERGED events as its changes and the results it gained.

    All or nothing: the caller needs Manage incidents on (a dataset of) the target and of every merged
    incident (Forbidden naming those they lack it on); one they cannot see is NotFound; a resolved
    target is Unprocessable (`merge_target_resolved`). Nothing is written unless everything passes.
    """
    merged_ids = list(dict.fromkeys(incident_ids))
    if not merged_ids:
        raise Invalid(
            "Name at least one incident to merge.", code="incident_ids_required", field="incidentIds"
        )
    if len(merged_ids) > MERGED_MAX:
        raise Invalid(
            f"At most {MERGED_MAX} incidents can be merged at once.",
            code="too_many_incidents",
            field="incidentIds",
        )
    if target_id in merged_ids:
        raise Unprocessable(
            "An incident cannot be merged into itself: leave the incident you merge into out of incidentIds.",
            code="merge_into_itself",
            field="incidentIds",
        )

    with transaction.atomic():
        # Locked in id order, whichever is the target: two merges (or a merge and a bulk change) of
        # overlapping incidents wait for each other instead of deadlocking. Visibility in the same
        # statement; `of` keeps the lock on the incidents' rows (see services._incident_for_change).
        found = {
            incident.pk: incident
            for incident in visible_incidents(by)
            .select_for_update(of=("self",))
            .filter(pk__in=[target_id, *merged_ids])
            .order_by("pk")
        }
        target = found.get(target_id)
        if target is None:
            raise NotFound(f"Incident {target_id} not found.")
        missing = [pk for pk in merged_ids if pk not in found]
        if missing:
            raise NotFound(
                f"Incident{'s' if len(missing) > 1 else ''} {services._some_ids(missing)} not found."
            )
        merged = sorted((found[pk] for pk in merged_ids), key=lambda incident: incident.pk)
        _require_manage_on_all([target, *merged], by)
        if target.status == Status.RESOLVED:
            raise Unprocessable(
                f"#{target.number} '{target.title}' is resolved: reopen it first, or merge into an open incident.",
                code="merge_target_resolved",
            )

        now = timezone.now()
        ids = [incident.pk for incident in merged]
        # Linked to the target too, not moved: the merged incidents keep their own results and
        # datasets, so their pages and history still show what they were about.
        datasets_before = services._dataset_ids_of(target)
        added_datasets = (
            set(IncidentDataset.objects.filter(incident_id__in=ids).values_list("dataset_id", flat=True))
            - datasets_before
        )
        gained = list(
            CheckResult.objects.filter(
                pk__in=IncidentCheckResult.objects.filter(incident_id__in=ids).values("check_result_id")
            )
            .exclude(pk__in=IncidentCheckResult.objects.filter(incident=target).values("check_result_id"))
            .order_by("pk")
        )
        IncidentDataset.objects.bulk_create(
            IncidentDataset(incident=target, dataset_id=dataset_id) for dataset_id in sorted(added_datasets)
        )
        IncidentCheckResult.objects.bulk_create(
            IncidentCheckResult(incident=target, check_result=result, added_by=by, added_at=now)
            for result in gained
        )
        into_target = [_merged_event(target, incident, target, by, now) for incident in merged]
        attached = [
            TimelineEvent(
                incident=target, kind=EventKind.RESULT_ATTACHED, actor=by, created_at=now, check_result=result
            )
            for result in gained
        ]
        # Written before the resolutions below, and at an earlier `now`: each merged incident's
        # timeline says it was merged, then that it was resolved as a duplicate.
        TimelineEvent.objects.bulk_create(
            [
                *into_target,
                *attached,
                *(_merged_event(incident, incident, target, by, now) for incident in merged),
            ]
        )
        target.updated_at = now
        target.version += 1
        if gained:
            # Warn and fail results joined it: its checks do not all pass any more (as attaching says).
            target.passing_since = None
        target.save(update_fields=["updated_at", "version", "passing_since"])
        domain_events.record(
            IncidentChanged(
                incident=target,
                by=by,
                status_before=target.status,
                severity_before=target.severity,
                dataset_ids_before=frozenset(datasets_before),
                dataset_ids=frozenset(datasets_before | added_datasets),
                changes=into_target,
                added_results=gained,
            )
        )

        note = f"Merged into #{target.number} {target.title}."
        already_resolved = []
        for incident in merged:
            if incident.status == Status.RESOLVED:
                # It keeps why it was resolved; the MERGED event says where it went.
                already_resolved.append(incident.pk)
                continue
            services.update_incident(
                incident.pk,
                by=by,
                status=Status.RESOLVED,
                resolution_reason=ResolutionReason.DUPLICATE,
                resolution_notes=note,
            )
        # Activity, as a comment is: "last updated" moves, the version does not.
        Incident.objects.filter(pk__in=already_resolved).update(updated_at=now)
    return services._as_written(target, by)


def incident_ref(incident: Incident) -> dict[str, Any]:
    """How a MERGED event names an incident."""
    return {"id": incident.pk, "number": incident.number, "title": incident.title}


def _merged_event(on: Incident, merged: Incident, target: Incident, by: User, now: Any) -> TimelineEvent:
    other = target if on.pk == merged.pk else merged
    return TimelineEvent(
        incident=on,
        kind=EventKind.MERGED,
        actor=by,
        created_at=now,
        field=MERGED_FIELD,
        old_value=incident_ref(merged),
        new_value=incident_ref(target),
        text=f"#{other.number} {other.title}",
    )


def _require_manage_on_all(incidents: list[Incident], by: User) -> None:
    """Forbidden, naming every incident on none of whose datasets the caller holds Manage incidents
    (queries.can_manage for each, in two statements)."""
    if by.is_admin and by.is_active:
        return
    pairs = list(
        IncidentDataset.objects.filter(incident_id__in=[incident.pk for incident in incidents])
        .order_by()
        .values_list("incident_id", "dataset_id")
    )
    held = permissions.permissions_on_many(by, {dataset_id for _, dataset_id in pairs})
    managed = {
        incident_id for incident_id, dataset_id in pairs if permissions.MANAGE_INCIDENTS in held[dataset_id]
    }
    refused = [incident for incident in incidents if incident.pk not in managed]
    if refused:
        names = ", ".join(
            f"#{incident.number} '{incident.title}'" for incident in refused[: services.IDS_NAMED]
        )
        more = len(refused) - services.IDS_NAMED
        raise Forbidden(
            "You need the Manage incidents permission on one of the datasets of every incident of a merge "
            f"(the one merged into too); you do not hold it on {names}{f' and {more} more' if more > 0 else ''}."
        )


@dataclass
class BulkOutcome:
    """What change_incidents did: the incidents changed (as update_incident returns them; one that
    already had the values counts as changed), and each refusal as {"id", "number" (only for an
    incident the caller can see), "code", "message"}, in id order."""

    changed: list[Incident] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def change_incidents(incident_ids: Sequence[int], *, by: User, **changes: Any) -> BulkOutcome:
    """Apply the same change (any of BULK_FIELDS; None leaves a field as it is) to each incident.

    Each incident goes through services.update_incident on its own, in its own transaction (a
    savepoint inside the caller's): its permission, lead and resolution rules are checked for it,
    and a refusal is recorded and skips it without undoing the others. A request that no incident
    could pass (no incidents, too many, nothing to change, an unknown value) is Invalid as a whole.
    Incidents are changed in id order, so two bulk changes lock shared incidents in the same order.
    """
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        raise Invalid(
            "Choose at least one incident to change.", code="incident_ids_required", field="incidentIds"
        )
    if len(ids) > BULK_MAX:
        raise Invalid(
            f"At most {BULK_MAX} incidents can be changed at once.",
            code="too_many_incidents",
            field="incidentIds",
        )
    unknown = set(changes) - set(BULK_FIELDS)
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))} of several incidents at once.")
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise Invalid(
            "Say what to change: the lead, the status, the severity or the resolution.",
            code="changes_required",
        )
    if "severity" in changes:
        check_choices("severity", [changes["severity"]], Severity.values)
    if "status" in changes:
        check_choices("status", [changes["status"]], Status.values)
    if "resolution_reason" in changes:
        services._known_reason(changes["resolution_reason"])
    if "resolution_notes" in changes:
        # Text no incident could store (too long, control characters) is the request's fault, not one
        # incident's.
        changes["resolution_notes"] = services._clean_text(
            "resolution notes", changes["resolution_notes"], services.DESCRIPTION_MAX, "resolutionNotes"
        )

    numbers = dict(visible_incidents(by).filter(pk__in=ids).values_list("pk", "number"))
    outcome = BulkOutcome()
    for incident_id in sorted(ids):
        try:
            outcome.changed.append(services.update_incident(incident_id, by=by, **changes))
        except QuellError as error:
            refusal: dict[str, Any] = {"id": incident_id}
            if incident_id in numbers:
                refusal["number"] = numbers[incident_id]
            outcome.refused.append(refusal | {"code": error.code, "message": error.message})
    return outcome
