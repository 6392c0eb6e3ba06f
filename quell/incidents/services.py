"""Writing incidents (the commands): create one, change it, attach results to it, comment on it.
Every entry point (API, web UI, CLI) changes incidents through these and nothing else.

Each function checks the caller's permissions, validates, writes, and records the timeline and the
domain events (quell.lib.events, quell.incidents.events) in one transaction, so a refused or failed
call leaves nothing behind. Reads live in quell.incidents.queries (and the modules it names), apart
from the writes: the writes use reads (visibility, permissions, the details they return), and no
read uses a write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog.models import FAILING_OUTCOMES, CheckResult, Dataset
from quell.incidents.details import load_details
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.incidents.models import (
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentRule,
    NumberSequence,
    ResolutionReason,
    Severity,
    Status,
    TimelineEvent,
)
from quell.incidents.queries import can_manage, check_choices, open_incidents_of_results, visible_incidents
from quell.lib import events as domain_events
from quell.lib.bulk import insert_rows
from quell.lib.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from quell.lib.seen import mark_checked
from quell.lib.text import require_plain_text

TITLE_MAX = 300
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 20_000
MAX_RESULTS_PER_CALL = 1000


# --- Writing --------------------------------------------------------------------------------------


def create_incident(
    *,
    by: User,
    title: str,
    check_result_ids: list[int],
    description: str = "",
    severity: str = Severity.MAJOR,
    lead_id: int | None = None,
    status: str = Status.REPORTED,
    resolution_notes: str = "",
    resolution_reason: str | None = None,
    allow_duplicate: bool = False,
    rule: IncidentRule | None = None,
) -> Incident:
    """Open an incident from warn and fail results. When one of them is already in an open incident
    the caller can see, DuplicateIncident names it, unless `allow_duplicate` (the caller confirmed
    they want a separate incident): people add to the open one rather than open a second unawares.

    `rule`: the incident rule on whose behalf Quell opens it (quell.automation; `by` is then the
    system user): the incident and its timeline name it."""
    title = _clean_title(title)
    description = _clean_text("description", description, DESCRIPTION_MAX)
    check_choices("severity", [severity], Severity.values)
    check_choices("status", [status], Status.values)
    resolution_notes = _clean_text("resolution notes", resolution_notes, DESCRIPTION_MAX, "resolutionNotes")
    if status == Status.RESOLVED and not resolution_notes:
        raise _notes_required()
    reason = _resolving_reason(status, resolution_reason)
    if not check_result_ids:
        raise Invalid(
            "An incident needs at least one warn or fail check result.",
            code="check_results_required",
            field="checkResultIds",
        )
    results = _failing_results(check_result_ids, by, mark_open=not allow_duplicate)
    datasets = {result.dataset_id: result.dataset for result in results}
    permissions.require_on_each(
        by, list(datasets.values()), permissions.MANAGE_INCIDENTS, "create an incident from its check results"
    )
    lead = by if lead_id is None else _lead(lead_id, set(datasets))
    # Last of the checks, after the permission's: a 409 says everything else was fine, so the
    # caller's confirmation (allow_duplicate) is all the retry needs.
    if not allow_duplicate:
        _refuse_a_duplicate(results, by)

    with transaction.atomic():
        now = timezone.now()
        incident = Incident.objects.create(
            number=NumberSequence.next_value("incident"),
            title=title,
            description=description,
            severity=severity,
            status=status,
            lead=lead,
            reporter=by,
            created_at=now,
            updated_at=now,
            resolved_at=now if status == Status.RESOLVED else None,
            resolution_notes=resolution_notes,
            resolution_reason=reason,
            rule=rule,
        )
        rule_name = rule.name if rule is not None else ""
        IncidentDataset.objects.bulk_create(
            IncidentDataset(incident=incident, dataset_id=ds) for ds in datasets
        )
        links = IncidentCheckResult.objects.bulk_create(
            IncidentCheckResult(incident=incident, check_result=result, added_by=by, added_at=now)
            for result in results
        )
        events = [
            TimelineEvent(
                incident=incident,
                kind=EventKind.CREATED,
                actor=by,
                created_at=now,
                text=title,
                rule_name=rule_name,
            )
        ]
        events += [
            TimelineEvent(
                incident=incident,
                kind=EventKind.RESULT_ATTACHED,
                actor=by,
                created_at=now,
                check_result=result,
                rule_name=rule_name,
            )
            for result in results
        ]
        TimelineEvent.objects.bulk_create(events)
        domain_events.record(
            IncidentCreated(
                incident=incident, dataset_ids=frozenset(datasets), results=results, by=by, rule=rule
            )
        )
    return _as_created(incident, by, datasets, links)


# Fields a caller may change, and the names the timeline records them under (the API's names).
TIMELINE_FIELD_NAMES = {
    "title": "title",
    "description": "description",
    "severity": "severity",
    "status": "status",
    "resolution_notes": "resolutionNotes",
    "resolution_reason": "resolutionReason",
    "lead_id": "lead",
}
EDITABLE_FIELDS = tuple(TIMELINE_FIELD_NAMES)


def update_incident(
    incident_id: int,
    *,
    by: User,
    version: int | None = None,
    rule: IncidentRule | None = None,
    **changes: Any,
) -> Incident:
    """Change any of EDITABLE_FIELDS. Unchanged values are ignored; a stale `version` is a Conflict.

    `rule`: the incident rule on whose behalf Quell changes it (quell.automation): only then may the
    reason be `recovered`, and the timeline names the rule."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))}.")
    changes = {key: value for key, value in changes.items() if value is not None}

    with transaction.atomic():
        incident = _incident_for_change(incident_id, by, version)
        dataset_ids = _dataset_ids_of(incident)
        new: dict[str, Any] = {}
        if "title" in changes:
            new["title"] = _clean_title(changes["title"])
        if "description" in changes:
            new["description"] = _clean_text("description", changes["description"], DESCRIPTION_MAX)
        if "severity" in changes:
            check_choices("severity", [changes["severity"]], Severity.values)
            new["severity"] = changes["severity"]
        if "status" in changes:
            check_choices("status", [changes["status"]], Status.values)
            new["status"] = changes["status"]
        if "resolution_notes" in changes:
            new["resolution_notes"] = _clean_text(
                "resolution notes", changes["resolution_notes"], DESCRIPTION_MAX, "resolutionNotes"
            )
        if "resolution_reason" in changes:
            new["resolution_reason"] = _known_reason(changes["resolution_reason"])
        new_lead: User | None = None
        if "lead_id" in changes and changes["lead_id"] != incident.lead_id:
            new_lead = _lead(int(changes["lead_id"]), dataset_ids)
            new["lead_id"] = new_lead.pk
        new = {key: value for key, value in new.items() if getattr(incident, key) != value}

        final_status = new.get("status", incident.status)
        final_notes = new.get("resolution_notes", incident.resolution_notes)
        if final_status == Status.RESOLVED and not final_notes:
            raise _notes_required(kept=True)
        _settle_reason(incident, new, given="resolution_reason" in changes, by_rule=rule is not None)
        if not new:
            return _as_written(incident, by)

        now = timezone.now()
        changes_from = {key: getattr(incident, key) for key in new}
        events: list[TimelineEvent] = []
        for key, value in new.items():
            old = getattr(incident, key)
            field_name = TIMELINE_FIELD_NAMES[key]
            reopened = key == "status" and old == Status.RESOLVED
            # A reason not recorded is null, as the incident's representation shows it.
            shown = (old or None, value or None) if key == "resolution_reason" else (old, value)
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind=EventKind.REOPENED if reopened else EventKind.CHANGED,
                    actor=by,
                    created_at=now,
                    field=field_name,
                    old_value=shown[0],
                    new_value=shown[1],
                    rule_name=rule.name if rule is not None else "",
                )
            )
            setattr(incident, key, value)
        if new_lead is not None:
            incident.lead = new_lead  # so the answer does not read it again
        if "status" in new:
            incident.resolved_at = now if final_status == Status.RESOLVED else None
            if final_status != Status.RESOLVED:
                # Reopening clears the reason as it clears resolved_at: the reopening says so. Whether
                # its checks pass is the rules' to say again from the next results.
                incident.resolution_reason = ""
                incident.passing_since = None
        incident.updated_at = now
        incident.version += 1
        incident.save()
        TimelineEvent.objects.bulk_create(events)
        domain_events.record(
            IncidentChanged(
                incident=incident,
                by=by,
                status_before=changes_from.get("status", incident.status),
                severity_before=changes_from.get("severity", incident.severity),
                dataset_ids_before=frozenset(dataset_ids),
                dataset_ids=frozenset(dataset_ids),
                changes=events,
                rule=rule,
            )
        )
    return _as_written(incident, by)


def attach_check_results(
    incident_id: int,
    check_result_ids: list[int],
    *,
    by: User,
    version: int | None = None,
    rule: IncidentRule | None = None,
) -> Incident:
    """Link more warn/fail results; results already linked are left as they are. `rule`: as for
    update_incident (a rule reopening an incident attaches the failure that reopened it)."""
    if not check_result_ids:
        raise Invalid(
            "Give at least one check result to attach.", code="check_results_required", field="checkResultIds"
        )
    with transaction.atomic():
        incident = _incident_for_change(incident_id, by, version)
        results = _failing_results(check_result_ids, by)
        permissions.require_on_each(
            by,
            list({result.dataset_id: result.dataset for result in results}.values()),
            permissions.MANAGE_INCIDENTS,
            "attach its check results to an incident",
        )
        linked, known_datasets = _links_and_datasets(incident, [result.pk for result in results])
        new_results = [result for result in results if result.pk not in linked]
        if not new_results:
            return _as_written(incident, by)
        now = timezone.now()
        added_datasets = {r.dataset_id for r in new_results} - known_datasets
        IncidentDataset.objects.bulk_create(
            IncidentDataset(incident=incident, dataset_id=ds) for ds in sorted(added_datasets)
        )
        IncidentCheckResult.objects.bulk_create(
            IncidentCheckResult(incident=incident, check_result=result, added_by=by, added_at=now)
            for result in new_results
        )
        TimelineEvent.objects.bulk_create(
            TimelineEvent(
                incident=incident,
                kind=EventKind.RESULT_ATTACHED,
                actor=by,
                created_at=now,
                check_result=result,
                rule_name=rule.name if rule is not None else "",
            )
            for result in new_results
        )
        incident.updated_at = now
        incident.version += 1
        # A warn or fail result attached: its checks do not all pass any more.
        incident.passing_since = None
        incident.save(update_fields=["updated_at", "version", "passing_since"])
        domain_events.record(
            IncidentChanged(
                incident=incident,
                by=by,
                status_before=incident.status,
                severity_before=incident.severity,
                dataset_ids_before=frozenset(known_datasets),
                dataset_ids=frozenset(known_datasets | added_datasets),
                added_results=new_results,
                rule=rule,
            )
        )
    return _as_written(incident, by)


def add_comment(incident_id: int, text: str, *, by: User) -> TimelineEvent:
    with transaction.atomic():
        # Permission first: someone who may not comment learns nothing from a validation message.
        incident = _incident_for_change(incident_id, by, None)
        text = _clean_text("comment", text, COMMENT_MAX, "text")
        if not text:
            raise Invalid("A comment needs some text.", code="comment_empty", field="text")
        now = timezone.now()
        event = TimelineEvent.objects.create(
            incident=incident, kind=EventKind.COMMENT, actor=by, created_at=now, text=text
        )
        # A comment is activity, not an edit: it moves "last updated" but not the version, so it
        # never makes someone's open edit form stale.
        Incident.objects.filter(pk=incident.pk).update(updated_at=now)
    return event


# --- Quell's own changes (quell.automation, on ingest) ------------------------------------------


# _BATCH: the writes below run inside the ingest's transaction, and the rules engine puts each in a
# savepoint of its own where it must survive a refusal (opening, resolving); a second savepoint of
# the service's own, with its release, was two statements more for each.


def _require_system(by: User, what: str) -> None:
    if not by.is_system:
        raise Forbidden(f"Only Quell itself {what}.")


def fold_results(folds: Mapping[int, Sequence[CheckResult]], *, by: User) -> list[Incident]:
    """Attach new warn and fail results to open incidents (incident id -> results): ingest's folding.

    What attach_check_results does for one incident (links, datasets, timeline events, version,
    IncidentChanged with the added results) for every incident a scan folds into, in a few
    statements however many there are: a nightly scan folds into each open incident of its checks.
    Incidents are locked in id order (two scans folding into the same ones cannot deadlock); one
    resolved meanwhile is left out, as are results it links already. Returns those changed.
    """
    _require_system(by, "folds results into incidents")
    if not folds:
        return []
    with transaction.atomic(savepoint=False):  # the caller's savepoint, if it wants one (_BATCH)
        incidents = _lock_open(list(folds))
        ids = [incident.pk for incident in incidents]
        result_ids = {result.pk for results in folds.values() for result in results}
        linked = set(
            IncidentCheckResult.objects.filter(incident_id__in=ids, check_result_id__in=result_ids)
            .order_by()
            .values_list("incident_id", "check_result_id")
        )
        known = _datasets_of_many(ids)
        now = timezone.now()
        # (incident id, dataset id) and (incident id, result id) rows: quell.lib.bulk writes them
        # without a model instance each, most of a nightly fold's time otherwise.
        new_datasets: list[tuple[int, int]] = []
        links: list[tuple[int, int]] = []
        changed: list[tuple[Incident, list[CheckResult], set[int]]] = []
        for incident in incidents:
            new_results = [
                result
                for result in {result.pk: result for result in folds[incident.pk]}.values()
                if (incident.pk, result.pk) not in linked and result.outcome in FAILING_OUTCOMES
            ]
            if not new_results:
                continue
            added = {result.dataset_id for result in new_results} - known[incident.pk]
            new_datasets += [(incident.pk, dataset_id) for dataset_id in sorted(added)]
            links += [(incident.pk, result.pk) for result in new_results]
            incident.updated_at = now
            incident.version += 1
            incident.passing_since = None
            changed.append((incident, new_results, added))
        if not changed:
            return []
        insert_rows(IncidentDataset, {}, ("incident_id", "dataset_id"), new_datasets)
        _insert_links(links, by, now)
        _insert_timeline(links, {"kind": EventKind.RESULT_ATTACHED, "actor_id": by.pk, "created_at": now})
        # One UPDATE for them all: the same time, no "passing since", and each version one up (under
        # the lock taken above, what each incident here holds). bulk_update's CASE per row and field
        # took 0.2 s of a nightly fold into 150 incidents (docs/performance.md).
        Incident.objects.filter(pk__in=[incident.pk for incident, _, _ in changed]).update(
            updated_at=now, version=F("version") + 1, passing_since=None
        )
        # Together: the reactions write a few statements for all of them (quell.lib.events).
        domain_events.record_all(
            [
                IncidentChanged(
                    incident=incident,
                    by=by,
                    status_before=incident.status,
                    severity_before=incident.severity,
                    dataset_ids_before=frozenset(known[incident.pk]),
                    dataset_ids=frozenset(known[incident.pk] | added),
                    added_results=new_results,
                )
                for incident, new_results, added in changed
            ]
        )
    return [incident for incident, _, _ in changed]


def record_passes(passes: Mapping[int, Sequence[CheckResult]], *, by: User) -> int:
    """Say on each open incident's timeline that a linked check passed (incident id -> pass results).

    Activity, not an edit (as a comment): no version, no "last updated", no integration event; the
    incident's "all checks passing since" is set_passing_since's. Returns the events written.
    """
    _require_system(by, "records passing checks")
    if not passes:
        return 0
    open_ids = set(
        Incident.objects.filter(pk__in=list(passes), status__in=OPEN_STATUSES).values_list("pk", flat=True)
    )
    return insert_rows(
        TimelineEvent,
        {"kind": EventKind.CHECK_PASSED, "actor_id": by.pk, "created_at": timezone.now()},
        ("incident_id", "check_result_id", "text"),
        [
            (incident_id, result.pk, result.check_ref.name)
            for incident_id in sorted(open_ids)
            for result in passes[incident_id]
        ],
    )


def set_passing_since(since: Mapping[int, datetime | None], *, by: User) -> None:
    """Set since when every linked check of each open incident passes (null: one does not)."""
    _require_system(by, "records passing checks")
    by_value: defaultdict[datetime | None, list[int]] = defaultdict(list)
    for incident_id, moment in since.items():
        by_value[moment].append(incident_id)
    for moment, ids in by_value.items():
        Incident.objects.filter(pk__in=ids, status__in=OPEN_STATUSES).update(passing_since=moment)


@dataclass(frozen=True)
class Opening:
    """An incident Quell opens for a rule (open_incidents): the results that triggered it, with
    their datasets and checks loaded, and the lead the rules chose."""

    rule: IncidentRule
    title: str
    description: str
    lead: User
    results: Sequence[CheckResult]


def open_incidents(openings: Sequence[Opening], *, by: User) -> list[Incident]:
    """Open the incidents the rules open for one scan: what create_incident does for each (number,
    datasets, links, timeline, IncidentCreated with the rule), in a fixed number of statements
    however many there are, their events recorded together so the tallies, the coverage and the
    integrations react in a few statements too (docs/performance.md, "Incident rules on ingest").

    Quell's alone, on its rules' behalf: the caller (quell.automation.engine) checked that each lead
    may manage incidents on the results' datasets (its `_Leads`, through quell.accounts.permissions,
    in this transaction); here a lead must still be an active person. One refused opening refuses
    them all (the engine then opens them one at a time).
    """
    _require_system(by, "opens incidents for its rules")
    if not openings:
        return []
    titles = [_clean_title(opening.title) for opening in openings]
    descriptions = [_clean_text("description", opening.description, DESCRIPTION_MAX) for opening in openings]
    for opening in openings:
        check_choices("severity", [opening.rule.severity], Severity.values)
        if not opening.results:
            raise Invalid(
                "An incident needs at least one warn or fail check result.",
                code="check_results_required",
                field="checkResultIds",
            )
        passing = [str(result.pk) for result in opening.results if result.outcome not in FAILING_OUTCOMES]
        if passing:
            raise Unprocessable(
                f"Only warn or fail results can be part of an incident; these are not: {', '.join(passing)}.",
                code="check_result_not_failing",
                field="checkResultIds",
            )
        if not opening.lead.is_active or opening.lead.is_system:
            raise Unprocessable(
                f"There is no active user {opening.lead.pk} to lead this incident.",
                code="unknown_lead",
                field="leadId",
            )

    with transaction.atomic(savepoint=False):  # the caller's savepoint, if it wants one (_BATCH)
        now = timezone.now()
        numbers = NumberSequence.next_values("incident", len(openings))
        incidents = [
            Incident(
                number=number,
                title=title,
                description=description,
                severity=opening.rule.severity,
                status=Status.REPORTED,
                lead=opening.lead,
                reporter=by,
                created_at=now,
                updated_at=now,
                rule=opening.rule,
            )
            for number, title, description, opening in zip(
                numbers, titles, descriptions, openings, strict=True
            )
        ]
        if connection.features.can_return_rows_from_bulk_insert:
            Incident.objects.bulk_create(incidents)
        else:  # SQLite before 3.35 cannot say which ids it gave
            for incident in incidents:
                incident.save(force_insert=True)
        datasets: list[tuple[int, int]] = []
        links: list[tuple[int, int]] = []
        created_events: list[tuple[int, str, str]] = []
        attached_events: list[tuple[int, int, str]] = []
        created: list[IncidentCreated] = []
        for incident, opening in zip(incidents, openings, strict=True):
            results = list({result.pk: result for result in opening.results}.values())
            dataset_ids = sorted({result.dataset_id for result in results})
            datasets += [(incident.pk, dataset_id) for dataset_id in dataset_ids]
            links += [(incident.pk, result.pk) for result in results]
            created_events.append((incident.pk, incident.title, opening.rule.name))
            attached_events += [(incident.pk, result.pk, opening.rule.name) for result in results]
            created.append(
                IncidentCreated(
                    incident=incident,
                    dataset_ids=frozenset(dataset_ids),
                    results=results,
                    by=by,
                    rule=opening.rule,
                )
            )
        insert_rows(IncidentDataset, {}, ("incident_id", "dataset_id"), datasets)
        _insert_links(links, by, now)
        # Each incident's creation, then its results (timeline order is by time, then id).
        at = {"actor_id": by.pk, "created_at": now}
        insert_rows(
            TimelineEvent,
            {"kind": EventKind.CREATED, **at},
            ("incident_id", "text", "rule_name"),
            created_events,
        )
        insert_rows(
            TimelineEvent,
            {"kind": EventKind.RESULT_ATTACHED, **at},
            ("incident_id", "check_result_id", "rule_name"),
            attached_events,
        )
        domain_events.record_all(created)
    return incidents


def resolve_as_recovered(resolutions: Mapping[int, tuple[IncidentRule, str]], *, by: User) -> list[Incident]:
    """Resolve open incidents as `recovered` (incident id -> the rule and its resolution note): what
    update_incident does for each (timeline of the status, note and reason, version, IncidentChanged
    with the rule), in a fixed number of statements however many there are. Incidents are locked
    in id order; one resolved meanwhile is left out. Returns those resolved."""
    _require_system(by, "resolves incidents as recovered")
    notes = {
        incident_id: _clean_text("resolution notes", note, DESCRIPTION_MAX, "resolutionNotes")
        for incident_id, (_, note) in resolutions.items()
    }
    if not all(notes.values()):
        raise _notes_required()
    if not resolutions:
        return []
    with transaction.atomic(savepoint=False):  # the caller's savepoint, if it wants one (_BATCH)
        incidents = _lock_open(list(resolutions))
        if not incidents:
            return []
        datasets = _datasets_of_many([incident.pk for incident in incidents])
        now = timezone.now()
        timeline: list[TimelineEvent] = []
        changed: list[IncidentChanged] = []
        for incident in incidents:
            rule = resolutions[incident.pk][0]
            status_before = incident.status
            # The fields in update_incident's order, each on the timeline as a person's change is.
            events: list[TimelineEvent] = []
            for key, value in (
                ("status", Status.RESOLVED),
                ("resolution_notes", notes[incident.pk]),
                ("resolution_reason", ResolutionReason.RECOVERED),
            ):
                old = getattr(incident, key)
                if old == value:
                    continue
                shown = (old or None, value or None) if key == "resolution_reason" else (old, value)
                events.append(
                    TimelineEvent(
                        incident_id=incident.pk,
                        kind=EventKind.CHANGED,
                        actor_id=by.pk,
                        created_at=now,
                        field=TIMELINE_FIELD_NAMES[key],
                        old_value=shown[0],
                        new_value=shown[1],
                        rule_name=rule.name,
                    )
                )
                setattr(incident, key, value)
            incident.resolved_at = now
            incident.updated_at = now
            incident.version += 1
            timeline += events
            changed.append(
                IncidentChanged(
                    incident=incident,
                    by=by,
                    status_before=status_before,
                    severity_before=incident.severity,
                    dataset_ids_before=frozenset(datasets[incident.pk]),
                    dataset_ids=frozenset(datasets[incident.pk]),
                    changes=events,
                    rule=rule,
                )
            )
        # What they share in one UPDATE (each version one up, under the lock above), the notes,
        # which differ, in a second.
        Incident.objects.filter(pk__in=[incident.pk for incident in incidents]).update(
            status=Status.RESOLVED,
            resolution_reason=ResolutionReason.RECOVERED,
            resolved_at=now,
            updated_at=now,
            version=F("version") + 1,
        )
        Incident.objects.bulk_update(incidents, ["resolution_notes"])
        TimelineEvent.objects.bulk_create(timeline)
        domain_events.record_all(changed)
    return incidents


# --- Helpers --------------------------------------------------------------------------------------


def _lock_open(incident_ids: list[int]) -> list[Incident]:
    """The open ones of these incidents, locked in id order (two batches over the same incidents
    cannot deadlock); one resolved meanwhile is left out."""
    return list(
        Incident.objects.select_for_update(of=("self",))
        .filter(pk__in=incident_ids, status__in=OPEN_STATUSES)
        .order_by("pk")
    )


def _datasets_of_many(incident_ids: list[int]) -> defaultdict[int, set[int]]:
    """Incident id -> its datasets' ids, in one statement."""
    datasets: defaultdict[int, set[int]] = defaultdict(set)
    for incident_id, dataset_id in (
        IncidentDataset.objects.filter(incident_id__in=incident_ids)
        .order_by()
        .values_list("incident_id", "dataset_id")
    ):
        datasets[incident_id].add(dataset_id)
    return datasets


def _insert_links(links: list[tuple[int, int]], by: User, now: datetime) -> None:
    """Link results to incidents ((incident id, result id) rows), added by `by` at `now`."""
    insert_rows(
        IncidentCheckResult,
        {"added_by_id": by.pk, "added_at": now},
        ("incident_id", "check_result_id"),
        links,
    )


def _insert_timeline(links: list[tuple[int, int]], shared: dict[str, Any]) -> None:
    """One timeline event per (incident id, result id) row, with `shared` values."""
    insert_rows(TimelineEvent, shared, ("incident_id", "check_result_id"), links)


def _incident_for_change(incident_id: int, by: User, version: int | None) -> Incident:
    """The incident, locked for this transaction, after checking the caller may change it."""
    # Read, visibility and lock in one statement; `of` keeps the lock on the incident's row alone.
    # No join (lead, reporter): on PostgreSQL a read that waited for another writer's lock re-checks
    # the joined rows against the incident's new version, and a lead handed over meanwhile made the
    # incident vanish (404) for the waiting edit.
    incident = visible_incidents(by).select_for_update(of=("self",)).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    if not can_manage(incident, by):
        raise Forbidden(
            "You need the Manage incidents permission on one of this incident's datasets to change it."
        )
    if version is not None and version != incident.version:
        raise Conflict(
            f"Incident #{incident.number} was changed by someone else (your version {version}, "
            f"current {incident.version}). Reload it and apply your change again.",
            current={"id": incident.pk, "version": incident.version},
        )
    return incident


def _as_written(incident: Incident, by: User) -> Incident:
    """The incident a write just locked and saved, with the details its representation needs.

    Its fields are what the write stored, so only the details are read (not the row again), and
    the caller, and a lead or reporter already loaded with the row, are not read again either.
    """
    known = [by]
    if Incident.lead.is_cached(incident):
        known.append(incident.lead)
    if Incident.reporter.is_cached(incident):
        known.append(incident.reporter)
    load_details([incident], by=by, links=True, datasets_by_name=False, known=known)
    return mark_checked(incident, by)


def _as_created(
    incident: Incident, by: User, datasets: dict[int, Dataset], links: list[IncidentCheckResult]
) -> Incident:
    """The incident create_incident just wrote, with the details `_as_written` would read back.

    All of them are at hand, so nothing is read (two statements per create): the caller could view
    every result the incident was made from (`_failing_results`), so every dataset, and the links
    are the rows just inserted, put in details.LINKED_RESULTS_ORDER.
    """
    for link in links:
        link.check_result.dataset = datasets[link.check_result.dataset_id]
    incident.visible_datasets = sorted(datasets.values(), key=lambda dataset: dataset.pk)  # type: ignore[attr-defined]
    by_id = sorted(links, key=lambda link: link.check_result_id)
    # A stable sort: within one data time the results stay in id order.
    incident.visible_links = sorted(  # type: ignore[attr-defined]
        by_id, key=lambda link: link.check_result.data_timestamp, reverse=True
    )
    return mark_checked(incident, by)


def _dataset_ids_of(incident: Incident) -> set[int]:
    return set(IncidentDataset.objects.filter(incident=incident).values_list("dataset_id", flat=True))


def _links_and_datasets(incident: Incident, check_result_ids: list[int]) -> tuple[set[int], set[int]]:
    """Which of these results the incident links already, and all its datasets, in one statement."""
    links = (
        IncidentCheckResult.objects.filter(incident=incident, check_result_id__in=check_result_ids)
        .order_by()
        .values_list(Value("result"), "check_result_id")
    )
    datasets = (
        IncidentDataset.objects.filter(incident=incident)
        .order_by()
        .values_list(Value("dataset"), "dataset_id")
    )
    linked: set[int] = set()
    dataset_ids: set[int] = set()
    for kind, pk in links.union(datasets, all=True):
        (linked if kind == "result" else dataset_ids).add(pk)
    return linked, dataset_ids


def _failing_results(check_result_ids: list[int], by: User, *, mark_open: bool = False) -> list[CheckResult]:
    """The results, each one the caller can view and warn or fail; Unprocessable otherwise.

    `mark_open` annotates each with `in_open_incident` (whether any open incident links it) in the
    same statement: the duplicate guard's first look, free for results in no open incident.
    """
    ids = list(dict.fromkeys(check_result_ids))
    if len(ids) > MAX_RESULTS_PER_CALL:
        raise Invalid(f"At most {MAX_RESULTS_PER_CALL} check results at once.", field="checkResultIds")
    results = permissions.only_viewable(CheckResult.objects.filter(pk__in=ids), by)
    if mark_open:
        results = results.annotate(
            in_open_incident=Exists(
                IncidentCheckResult.objects.filter(
                    check_result=OuterRef("pk"), incident__status__in=OPEN_STATUSES
                )
            )
        )
    found = {result.pk: result for result in results.select_related("dataset__data_source", "check_ref")}
    missing = [str(result_id) for result_id in ids if result_id not in found]
    if missing:
        raise Unprocessable(
            f"Unknown check result ids: {', '.join(missing)}.",
            code="unknown_check_results",
            field="checkResultIds",
        )
    passing = [str(r.pk) for r in found.values() if r.outcome not in FAILING_OUTCOMES]
    if passing:
        raise Unprocessable(
            f"Only warn or fail results can be part of an incident; these are not: {', '.join(passing)}.",
            code="check_result_not_failing",
            field="checkResultIds",
        )
    return [found[result_id] for result_id in ids]


class DuplicateIncident(Invalid):
    """Results of the new incident are already in an open incident (`incident`, the newest of them
    the caller can see); nothing was written. Adding them to it, or asking again with the caller's
    confirmation (allow_duplicate), succeeds.

    A 409, as Taken: the request conflicts with what exists. An Invalid, so a form that does not
    offer the choice still shows it like any other refusal.
    """

    status = 409
    code = "duplicate_incident"

    def __init__(self, incident: Incident, result_ids: list[int]) -> None:
        self.incident = incident
        self.result_ids = result_ids
        one = len(result_ids) == 1
        super().__init__(
            f"Check result{'' if one else 's'} {_some_ids(result_ids)} {'is' if one else 'are'} already in "
            f"open incident #{incident.number} '{incident.title}'. Add {'it' if one else 'them'} to that "
            "incident, or confirm a separate incident with allowDuplicate."
        )

    def as_dict(self) -> dict[str, Any]:
        incident = {"id": self.incident.pk, "number": self.incident.number, "name": self.incident.title}
        return super().as_dict() | {"incident": incident}


IDS_NAMED = 10


def _some_ids(ids: list[int]) -> str:
    """The first IDS_NAMED ids, and how many more: a refusal of 1,000 results stays readable."""
    named = ", ".join(str(pk) for pk in ids[:IDS_NAMED])
    return named if len(ids) <= IDS_NAMED else f"{named} and {len(ids) - IDS_NAMED} more"


def _refuse_a_duplicate(results: list[CheckResult], by: User) -> None:
    """DuplicateIncident when one of these results (from _failing_results with `mark_open`) is in an
    open incident the caller can see; results in none cost no statement."""
    marked = [result.pk for result in results if result.in_open_incident]  # type: ignore[attr-defined]
    if not marked:
        return
    found = open_incidents_of_results(marked, by=by)
    if not found:
        # Only an incident the caller cannot see holds them. The services keep an incident on its
        # results' datasets, which the caller views (they could not create from them otherwise), so
        # this takes rows put there by hand; naming it would show it to them, and adding to it is
        # not theirs to do.
        return
    # Each list is newest first (created_at, then id), as is the incident chosen among them.
    newest = max((listed[0] for listed in found.values()), key=lambda i: (i.created_at, i.pk))
    held = sorted(pk for pk, listed in found.items() if any(i.pk == newest.pk for i in listed))
    raise DuplicateIncident(newest, held)


def _lead(user_id: int, dataset_ids: set[int]) -> User:
    """The user who is to lead an incident of these datasets: active, and able to change it.

    A lead who could not change the incident would find it under "Assigned to me" with no way to
    act on it, so a lead needs Manage incidents on at least one of its datasets, as changing it
    does (queries.can_manage).
    """
    lead = User.objects.filter(pk=user_id, is_active=True, is_system=False).first()
    if lead is None:
        raise Unprocessable(
            f"There is no active user {user_id} to lead this incident.", code="unknown_lead", field="leadId"
        )
    perms = permissions.permissions_on_many(lead, dataset_ids)
    if not any(permissions.VIEW in p for p in perms.values()):
        # The older refusal keeps its code: clients written before the Manage rule match on it.
        raise Unprocessable(
            f"{lead.display_name} cannot view any of this incident's datasets, so cannot lead it.",
            code="lead_cannot_view",
            field="leadId",
        )
    if not any(permissions.MANAGE_INCIDENTS in p for p in perms.values()):
        raise Unprocessable(
            f"{lead.display_name} cannot lead this incident: a lead needs the Manage incidents "
            "permission on one of its datasets, to be able to change it.",
            code="lead_cannot_manage",
            field="leadId",
        )
    return lead


def check_title(title: str | None) -> str:
    """The title, stripped, or Invalid as create_incident and update_incident refuse it."""
    return _clean_title(title)


def _clean_title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise Invalid("An incident needs a title.", code="title_required", field="title")
    if len(title) > TITLE_MAX:
        raise Invalid(
            f"The title is longer than {TITLE_MAX} characters.", code="title_too_long", field="title"
        )
    return require_plain_text(title, "title", label="The title")


def _clean_text(name: str, text: str | None, limit: int, field: str = "") -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise Invalid(f"The {name} is longer than {limit} characters.", code="too_long", field=field or name)
    return require_plain_text(text, field or name, label=f"The {name}", multiline=True)


def _known_reason(reason: str) -> str:
    if reason not in ResolutionReason.values:
        raise Invalid(
            f"resolutionReason must be one of {', '.join(ResolutionReason.values)}, not {reason!r}.",
            code="invalid_resolution_reason",
            field="resolutionReason",
        )
    return reason


def _reason_needs_resolved(*, kept: bool = False) -> Invalid:
    """`kept`: for a change, whose status may be the one the incident keeps (see _notes_required)."""
    return (Unprocessable if kept else Invalid)(
        "A resolution reason is given only with the status resolved: resolve the incident, or leave "
        "the reason out.",
        code="resolution_reason_needs_resolved",
        field="resolutionReason",
    )


def _reserved_reason() -> Unprocessable:
    return Unprocessable(
        "The reason recovered is Quell's own, for incidents its rules resolve when the checks pass "
        "again: choose another reason.",
        code="resolution_reason_reserved",
        field="resolutionReason",
    )


def _resolving_reason(status: str, reason: str | None) -> str:
    """The reason a new incident in `status` records: the one given, `fixed` when resolved without
    one (Soda's clients know no reasons), and none while open."""
    if reason is None:
        return ResolutionReason.FIXED if status == Status.RESOLVED else ""
    _known_reason(reason)
    if status != Status.RESOLVED:
        raise _reason_needs_resolved()
    if reason == ResolutionReason.RECOVERED:
        raise _reserved_reason()
    return reason


def _settle_reason(incident: Incident, new: dict[str, Any], *, given: bool, by_rule: bool = False) -> None:
    """Complete `new` (update_incident's changes, equal values dropped) with the reason it implies.

    A reason goes with the status resolved only: resolving without one records `fixed` (Soda's
    clients send none), and one given for an incident that stays or becomes open is refused
    (reopening clears the reason, in update_incident). `recovered` is the rules' alone: a person may
    keep it but not set it.
    """
    resolved = new.get("status", incident.status) == Status.RESOLVED
    if given and not resolved:
        raise _reason_needs_resolved(kept=True)
    if new.get("resolution_reason") == ResolutionReason.RECOVERED and not by_rule:
        raise _reserved_reason()
    if resolved and incident.status != Status.RESOLVED and "resolution_reason" not in new:
        new["resolution_reason"] = ResolutionReason.FIXED


NOTES_REQUIRED = "A resolution note is required to resolve an incident: say what was done."


def _notes_required(*, kept: bool = False) -> Invalid:
    """`kept`: for a change, which may rely on notes the incident keeps (a request alone cannot show
    the rule is met, so the API answers it as an Unprocessable, not as a schema violation)."""
    return (Unprocessable if kept else Invalid)(
        NOTES_REQUIRED,
        code="resolution_notes_required",
        field="resolutionNotes",
    )
