"""REST endpoints for incidents, shaped like Soda Cloud's (title and name both accepted and returned)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Status

from quell.accounts.models import User
from quell.api.base import (
    COMMON_ERRORS,
    MAX_ID,
    WRITE_ERRORS,
    ErrorOut,
    Id,
    Page,
    PageParams,
    PathId,
    Schema,
    UserRef,
    UtcDatetime,
    caller,
    rows_response,
    user_ref,
)
from quell.incidents import services
from quell.incidents.models import Incident, TimelineEvent
from quell.integrations.api import ExternalLinkOut
from quell.integrations.services import link_out, links_for_incidents
from quell.lib.errors import Conflict, Invalid

router = Router(tags=["incidents"])

SeverityName = Literal["minor", "major", "critical"]
StatusName = Literal["reported", "investigating", "fixing", "resolved"]


class DatasetRef(Schema):
    id: int
    name: str
    dataSource: str


class LinkedResultOut(Schema):
    id: int
    checkId: int
    checkName: str
    datasetId: int
    datasetName: str
    outcome: str
    value: float | None
    dataTimestamp: UtcDatetime


class IncidentOut(Schema):
    id: int
    number: int
    title: str
    name: str
    description: str
    severity: SeverityName
    status: StatusName
    lead: UserRef
    reporter: UserRef
    created: datetime
    lastUpdated: datetime
    resolvedAt: datetime | None
    resolutionNotes: str
    checkResults: list[LinkedResultOut] = Field(
        description="Newest `dataTimestamp` first; results with the same data time in id order."
    )
    datasets: list[DatasetRef]
    cloudUrl: str
    version: int
    links: list[ExternalLinkOut] = Field(default_factory=list, description="Links receivers gave back.")


class ConflictOut(ErrorOut):
    current: IncidentOut


class IncidentCreateIn(Schema):
    title: str | None = Field(None, description="The incident's title; `name` is accepted too.")
    name: str | None = None
    description: str | None = ""
    severity: SeverityName = "major"
    checkResultIds: list[Id] | None = Field(
        None, description="Warn or fail results; alias `monitorResultIds`."
    )
    monitorResultIds: list[Id] | None = None
    leadId: Id | None = Field(
        None,
        description="Defaults to the caller. An active user with Manage incidents on the dataset of "
        "one of the results, or 400 `lead_cannot_manage`.",
    )
    status: StatusName = "reported"
    resolutionNotes: str | None = None


class IncidentUpdateIn(Schema):
    title: str | None = None
    name: str | None = None
    description: str | None = None
    severity: SeverityName | None = None
    status: StatusName | None = None
    resolutionNotes: str | None = None
    leadId: Id | None = Field(
        None,
        description="A new lead must be an active user with Manage incidents on one of the incident's "
        "datasets, or 400 `lead_cannot_manage`; the current lead, sent again, is kept as it is.",
    )
    version: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        None, description="The version you read; a stale one gets 409 and changes nothing."
    )


class AttachIn(Schema):
    checkResultIds: list[Id] | None = None
    monitorResultIds: list[Id] | None = None
    version: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None


class CommentIn(Schema):
    text: str


class TimelineEventOut(Schema):
    id: int
    type: str
    actor: UserRef | None
    created: datetime
    field: str | None
    oldValue: Any
    newValue: Any
    text: str | None
    checkResult: LinkedResultOut | None


class IncidentPage(Page[IncidentOut]):
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page (fast at any depth); null on the last page."
    )
    totalElementsExact: bool = Field(
        description="False when more incidents match than were counted: totalElements is then a lower bound."
    )


class IncidentQuery(PageParams):
    cursor: str = Field(
        "",
        max_length=1000,
        description="A `nextCursor` from the previous page; `page` is then ignored.",
    )
    status: list[StatusName] = Field(default_factory=list)
    severity: list[SeverityName] = Field(default_factory=list)
    datasetId: list[Id] = Field(default_factory=list)
    leadId: list[Id] = Field(default_factory=list)
    reporterId: list[Id] = Field(default_factory=list)
    incidentIds: list[Id] = Field(default_factory=list)
    search: str = Field("", max_length=200, description="Words that must all appear in the title.")
    from_: UtcDatetime | None = Field(None, alias="from", description="Created at or after.")
    to: UtcDatetime | None = Field(None, description="Created before.")


def linked_result(result: Any) -> dict[str, Any]:
    return {
        "id": result.pk,
        "checkId": result.check_ref_id,
        "checkName": result.check_ref.name,
        "datasetId": result.dataset_id,
        "datasetName": result.dataset.name,
        "outcome": result.outcome,
        "value": result.value,
        "dataTimestamp": result.data_timestamp,
    }


def incident_out(
    incidents: Iterable[Incident], details: dict[int, services.IncidentDetails]
) -> list[dict[str, Any]]:
    """Serialise incidents with their details (services.details_of / details_from_loaded)."""
    incidents = list(incidents)
    links = links_for_incidents(incidents)
    base_url = settings.BASE_URL
    out = []
    for i in incidents:
        d = details[i.pk]
        out.append(
            {
                "id": i.pk,
                "number": i.number,
                "title": i.title,
                "name": i.title,
                "description": i.description,
                "severity": i.severity,
                "status": i.status,
                "lead": {"id": d.lead.id, "email": d.lead.email, "name": d.lead.name},
                "reporter": {"id": d.reporter.id, "email": d.reporter.email, "name": d.reporter.name},
                "created": i.created_at,
                "lastUpdated": i.updated_at,
                "resolvedAt": i.resolved_at,
                "resolutionNotes": i.resolution_notes,
                "checkResults": [
                    {
                        "id": r.id,
                        "checkId": r.check_id,
                        "checkName": r.check_name,
                        "datasetId": r.dataset_id,
                        "datasetName": r.dataset_name,
                        "outcome": r.outcome,
                        "value": r.value,
                        "dataTimestamp": r.data_timestamp,
                    }
                    for r in d.results
                ],
                "datasets": [
                    {"id": ds.id, "name": ds.name, "dataSource": ds.data_source} for ds in d.datasets
                ],
                "cloudUrl": f"{base_url}/incidents/{i.number}",
                "version": i.version,
                "links": [link_out(link) for link in links[i.pk]],
            }
        )
    return out


def timeline_out(events: list[TimelineEvent]) -> list[dict[str, Any]]:
    # Lead changes store user ids; show who they are, looked up in one query.
    lead_ids = {v for e in events if e.field == "lead" for v in (e.old_value, e.new_value) if v}
    leads = {u.pk: user_ref(u) for u in User.objects.filter(pk__in=lead_ids)}
    return [
        {
            "id": e.pk,
            "type": e.kind,
            "actor": user_ref(e.actor),
            "created": e.created_at,
            "field": e.field or None,
            "oldValue": leads.get(int(e.old_value)) if e.field == "lead" and e.old_value else e.old_value,
            "newValue": leads.get(int(e.new_value)) if e.field == "lead" and e.new_value else e.new_value,
            "text": e.text or None,
            "checkResult": linked_result(e.check_result) if e.check_result else None,
        }
        for e in events
    ]


def _one(incident: Incident) -> dict[str, Any]:
    return incident_out([incident], {incident.pk: services.details_from_loaded(incident)})[0]


def _title(title: str | None, name: str | None) -> str | None:
    return title if title is not None else name


def _result_ids(ids: list[int] | None, alias: list[int] | None) -> list[int]:
    if ids is not None and alias is not None and ids != alias:
        raise Invalid("Give checkResultIds or monitorResultIds, not both.", field="checkResultIds")
    return ids if ids is not None else (alias or [])


@router.get(
    "/incidents", response={200: IncidentPage, **COMMON_ERRORS}, summary="List incidents you can view"
)
def list_incidents(request: HttpRequest, query: Query[IncidentQuery]) -> HttpResponse:
    by = caller(request)
    filters = services.IncidentFilters(
        statuses=list(query.status),
        severities=list(query.severity),
        dataset_ids=query.datasetId,
        lead_ids=query.leadId,
        reporter_ids=query.reporterId,
        incident_ids=query.incidentIds,
        search=query.search,
        created_from=query.from_,
        created_to=query.to,
    )
    chosen, counts = services.find_incidents(filters, by=by)
    found = services.page_of(
        chosen,
        counts,
        filters.statuses,
        size=query.size,
        page=query.page,
        cursor=query.cursor,
    )
    page = {
        "content": incident_out(found.rows, services.details_of(found.rows, by=by)),
        "first": found.number == 0,
        "last": found.next_cursor is None,
        "number": found.number,
        "size": query.size,
        "totalElements": found.total,
        "totalPages": math.ceil(found.total / query.size),
        "nextCursor": found.next_cursor,
        "totalElementsExact": found.total_exact,
    }
    return rows_response(IncidentPage, page)


@router.post("/incidents", response={201: IncidentOut, **WRITE_ERRORS}, summary="Create an incident")
def create_incident(request: HttpRequest, payload: IncidentCreateIn) -> Status[dict[str, Any]]:
    incident = services.create_incident(
        by=caller(request),
        title=_title(payload.title, payload.name) or "",
        description=payload.description or "",
        severity=payload.severity,
        check_result_ids=_result_ids(payload.checkResultIds, payload.monitorResultIds),
        lead_id=payload.leadId,
        status=payload.status,
        resolution_notes=payload.resolutionNotes or "",
    )
    return Status(201, _one(incident))


@router.get(
    "/incidents/{incident_id}",
    response={200: IncidentOut, **COMMON_ERRORS, 404: ErrorOut},
    summary="One incident",
)
def get_incident(request: HttpRequest, incident_id: PathId) -> HttpResponse:
    by = caller(request)
    incident = services.incident_alone(incident_id, by=by)
    return rows_response(IncidentOut, incident_out([incident], services.details_of([incident], by=by))[0])


def _update(request: HttpRequest, incident_id: PathId, payload: IncidentUpdateIn) -> Any:
    by = caller(request)
    try:
        incident = services.update_incident(
            incident_id,
            by=by,
            version=payload.version,
            title=_title(payload.title, payload.name),
            description=payload.description,
            severity=payload.severity,
            status=payload.status,
            resolution_notes=payload.resolutionNotes,
            lead_id=payload.leadId,
        )
    except Conflict as conflict:
        return Status(409, conflict.as_dict() | {"current": _one(services.get_incident(incident_id, by=by))})
    return Status(200, _one(incident))


UPDATE_RESPONSES: dict[int, Any] = {200: IncidentOut, **WRITE_ERRORS, 409: ConflictOut}


@router.post("/incidents/{incident_id}", response=UPDATE_RESPONSES, summary="Update an incident (Soda style)")
def update_incident_post(request: HttpRequest, incident_id: PathId, payload: IncidentUpdateIn) -> Any:
    return _update(request, incident_id, payload)


@router.patch("/incidents/{incident_id}", response=UPDATE_RESPONSES, summary="Update an incident")
def update_incident_patch(request: HttpRequest, incident_id: PathId, payload: IncidentUpdateIn) -> Any:
    return _update(request, incident_id, payload)


@router.post(
    "/incidents/{incident_id}/checkResults", response=UPDATE_RESPONSES, summary="Attach more check results"
)
def attach_check_results(request: HttpRequest, incident_id: PathId, payload: AttachIn) -> Any:
    by = caller(request)
    try:
        incident = services.attach_check_results(
            incident_id,
            _result_ids(payload.checkResultIds, payload.monitorResultIds),
            by=by,
            version=payload.version,
        )
    except Conflict as conflict:
        return Status(409, conflict.as_dict() | {"current": _one(services.get_incident(incident_id, by=by))})
    return Status(200, _one(incident))


@router.get(
    "/incidents/{incident_id}/timeline",
    response={200: list[TimelineEventOut], **COMMON_ERRORS, 404: ErrorOut},
    summary="Every change, attached result and comment, oldest first",
)
def get_timeline(request: HttpRequest, incident_id: PathId) -> list[dict[str, Any]]:
    return timeline_out(services.timeline(incident_id, by=caller(request)))


@router.post(
    "/incidents/{incident_id}/comments",
    response={201: TimelineEventOut, **WRITE_ERRORS},
    summary="Comment on an incident",
)
def add_comment(request: HttpRequest, incident_id: PathId, payload: CommentIn) -> Status[dict[str, Any]]:
    event = services.add_comment(incident_id, payload.text, by=caller(request))
    return Status(201, timeline_out([event])[0])
