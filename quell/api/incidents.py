"""REST endpoints for incidents, shaped like Soda Cloud's (title and name both accepted and returned)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Path, Query, Router, Status
from pydantic import ConfigDict
from pydantic.config import JsonDict

from quell.accounts.models import User
from quell.api.base import (
    COMMON_ERRORS,
    MAX_ID,
    UNPROCESSABLE,
    WRITE_ERRORS,
    Body,
    ErrorOut,
    Id,
    Page,
    PageParams,
    Schema,
    UserRef,
    UtcDatetime,
    WholeNumber,
    caller,
    request_examples,
    rows_response,
    text,
    user_ref,
)
from quell.api.integrations import ExternalLinkOut
from quell.incidents import details as incident_details
from quell.incidents import merging, services
from quell.incidents import paging as incident_paging
from quell.incidents import queries as incident_queries
from quell.incidents.models import Incident, TimelineEvent
from quell.integrations.services import link_out, links_for_incidents
from quell.lib.errors import Conflict, Invalid
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN, NON_BLANK_TEXT_PATTERN, TEXT_PATTERN

router = Router(tags=["incidents"])

SeverityName = Literal["minor", "major", "critical"]
StatusName = Literal["reported", "investigating", "fixing", "resolved"]
ReasonName = Literal["fixed", "expected", "falsePositive", "duplicate", "noActionNeeded", "recovered"]
IncidentId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The incident's id (not its number: see `number`).", example=3)
]
Version = Annotated[int, Field(ge=1, le=MAX_ID), WholeNumber]
ResultIds = Annotated[list[Id], Field(min_length=1, max_length=services.MAX_RESULTS_PER_CALL)]
# Query lists, bounded so that a query the schema allows fits in the request line a server reads
# (gunicorn's longest, 8190 bytes: quell.web.gunicorn_conf; tests/test_openapi.py adds them up).
INCIDENT_IDS_MAX = 100
PEOPLE_OR_DATASETS_MAX = 15
SEARCH_MAX = 200
# A nextCursor is a signed token (django.core.signing): URL-safe base64, dots and colons.
CURSOR_PATTERN = "^[A-Za-z0-9_.:-]*$"
CURSOR_MAX = 300
SEVERITIES = "`minor`, `major` or `critical`"
STATUSES = "`reported`, `investigating`, `fixing` or `resolved`"
REASONS = "`fixed`, `expected`, `falsePositive`, `duplicate`, `noActionNeeded` or `recovered`"
# What a client may send as a reason, and what it may not (services._settle_reason).
REASON_RULES = (
    "`recovered` is Quell's own, for incidents its rules resolve when the checks pass again (400 "
    "`resolution_reason_reserved`)"
)


class DatasetRef(Schema):
    id: int = Field(description="The dataset's id.")
    name: str = Field(description="The dataset's name.")
    dataSource: str = Field(description="The name of its data source.")


class RuleRef(Schema):
    id: int = Field(description="The incident rule's id.")
    name: str = Field(description="The rule's name.")


class LinkedResultOut(Schema):
    id: int = Field(description="The check result's id.")
    checkId: int = Field(description="The check it is a result of.")
    checkName: str = Field(description="That check's name.")
    datasetId: int = Field(description="The dataset of the check.")
    datasetName: str = Field(description="That dataset's name.")
    outcome: str = Field(
        description="The result's outcome: `warn` or `fail` (`pass` on a `checkPassed` timeline event)."
    )
    value: float | None = Field(description="The measured value, if any.")
    dataTimestamp: UtcDatetime = Field(description="The time of the data the check looked at (UTC).")


class IncidentOut(Schema):
    id: int = Field(description="The incident's id, which the API's paths take.")
    number: int = Field(description="The incident's number, shown as #12 and in its page's URL.")
    title: str = Field(description="The incident's title.")
    name: str = Field(description="The title again, under Soda Cloud's name for it.")
    description: str = Field(description="What is wrong, in the reporter's words; may be empty.")
    severity: SeverityName = Field(description=f"How bad it is: {SEVERITIES}.")
    status: StatusName = Field(description=f"Where it stands: {STATUSES}.")
    lead: UserRef = Field(description="Who leads the incident.")
    reporter: UserRef = Field(
        description="Who created it: Quell itself (name `Quell`) for an incident a rule opened."
    )
    rule: RuleRef | None = Field(
        description="The incident rule that opened it; null when a person did, or the rule is deleted."
    )
    created: datetime = Field(description="When it was created.")
    lastUpdated: datetime = Field(description="When it last changed (a comment counts too).")
    resolvedAt: datetime | None = Field(description="When it was resolved; null while it is open.")
    resolutionNotes: str = Field(description="What was done about it; required to resolve.")
    resolutionReason: ReasonName | None = Field(
        description=f"Why it was resolved: {REASONS}; null while it is open, and for incidents "
        "resolved before Quell recorded reasons."
    )
    passingSince: datetime | None = Field(
        description="While it is open: since when the newest result of every check linked to it "
        "passes; null while any does not, and once it is resolved."
    )
    checkResults: list[LinkedResultOut] = Field(
        description="Its warn and fail results you can see: newest `dataTimestamp` first; results with "
        "the same data time in id order."
    )
    datasets: list[DatasetRef] = Field(description="The datasets of its results that you can see.")
    cloudUrl: str = Field(description="The incident's page in Quell.")
    version: int = Field(description="Goes up with every change: send it back to refuse a stale change.")
    links: list[ExternalLinkOut] = Field(default_factory=list, description="Links receivers gave back.")


class ConflictOut(ErrorOut):
    current: IncidentOut = Field(description="The incident as it is now: apply your change to this one.")


class IncidentRef(Schema):
    id: int = Field(description="The incident's id, which the API's paths take.")
    number: int = Field(description="The incident's number, shown as #12.")
    name: str = Field(description="The incident's title.")


class DuplicateOut(ErrorOut):
    incident: IncidentRef = Field(
        description="The open incident the results are already in (the newest, when several): add them "
        "to it with `POST /incidents/{id}/checkResults`, or send `allowDuplicate` to open another."
    )


# A reason goes with the status resolved only (services._resolving_reason).
_REASON_NEEDS_RESOLVED: JsonDict = {
    "anyOf": [
        {"properties": {"resolutionReason": {"type": "null"}}},
        {"properties": {"status": {"const": "resolved"}}, "required": ["status"]},
    ]
}

_RESOLVED_NEEDS_NOTES: JsonDict = {
    "anyOf": [
        {"properties": {"status": {"enum": ["reported", "investigating", "fixing"]}}},
        {
            "properties": {
                "status": {"const": "resolved"},
                "resolutionNotes": {"type": "string", "pattern": NON_BLANK_TEXT_PATTERN},
            },
            "required": ["status", "resolutionNotes"],
        },
    ]
}


def _one_of_the_two(first: str, second: str, required: JsonDict) -> JsonDict:
    """Schema words for "exactly one of `first` and `second`, holding `required`" (a `not` both)."""
    return {
        "anyOf": [
            {"properties": {first: required}, "required": [first]},
            {"properties": {second: required}, "required": [second]},
        ]
    }


_NOT_BOTH_RESULT_LISTS: JsonDict = {"not": {"required": ["checkResultIds", "monitorResultIds"]}}


class IncidentCreateIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _one_of_the_two("title", "name", {"type": "string"}),
                _one_of_the_two("checkResultIds", "monitorResultIds", {"type": "array"}),
                _RESOLVED_NEEDS_NOTES,
                _REASON_NEEDS_RESOLVED,
                _NOT_BOTH_RESULT_LISTS,
            ]
        }
    )

    title: str | None = text(
        None,
        description="The incident's title: one line, not blank. Give it here or as `name`; `title` wins.",
        max_length=services.TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["Customers without email after the CRM import"],
    )
    name: str | None = text(
        None,
        description="The title under Soda Cloud's name for it.",
        max_length=services.TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    description: str | None = text(
        "",
        description="What is wrong; may span lines.",
        max_length=services.DESCRIPTION_MAX,
        pattern=TEXT_PATTERN,
    )
    severity: SeverityName = Field(
        "major", description=f"How bad it is: {SEVERITIES} (the default is major)."
    )
    checkResultIds: ResultIds | None = Field(
        None,
        description="The warn or fail results the incident is about, at least one; each must exist, be "
        "one you can see, and warn or fail (else 400). Alias `monitorResultIds`; give one of the two.",
        examples=[[397]],
    )
    monitorResultIds: ResultIds | None = Field(None, description="`checkResultIds` under Soda's older name.")
    leadId: Id | None = Field(
        None,
        description="Who leads it; defaults to you. An active user with Manage incidents on the dataset "
        "of one of the results, or 400 (`unknown_lead`, `lead_cannot_view`, `lead_cannot_manage`).",
    )
    allowDuplicate: bool = Field(
        False,
        description="Open it even though some of the results are already in an open incident; without "
        "it, that is refused (409 `duplicate_incident`) with the incident to add them to instead.",
    )
    status: StatusName = Field(
        "reported", description=f"Where it starts: {STATUSES} (the default is reported)."
    )
    resolutionNotes: str | None = text(
        None,
        description="What was done about it: required (not blank) with status `resolved`.",
        max_length=services.DESCRIPTION_MAX,
        pattern=TEXT_PATTERN,
    )
    resolutionReason: ReasonName | None = Field(
        None,
        description=f"Why it is resolved, with status `resolved` only (400 "
        f"`resolution_reason_needs_resolved`): {REASONS}; `fixed` when left out. {REASON_RULES}.",
    )


class IncidentUpdateIn(Body):
    title: str | None = text(
        None,
        description="A new title: one line, not blank. Or give it as `name`; `title` wins.",
        max_length=services.TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    name: str | None = text(
        None,
        description="A new title under Soda Cloud's name for it.",
        max_length=services.TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    description: str | None = text(
        None, description="A new description.", max_length=services.DESCRIPTION_MAX, pattern=TEXT_PATTERN
    )
    severity: SeverityName | None = Field(None, description=f"A new severity: {SEVERITIES}.")
    status: StatusName | None = Field(
        None,
        description=f"A new status: {STATUSES}. Resolving needs resolution notes, given here or kept "
        "from before (400 `resolution_notes_required`); leaving resolved reopens the incident.",
    )
    resolutionNotes: str | None = text(
        None,
        description="New resolution notes (empty clears them, unless the incident is or becomes resolved).",
        max_length=services.DESCRIPTION_MAX,
        pattern=TEXT_PATTERN,
    )
    resolutionReason: ReasonName | None = Field(
        None,
        description=f"Why it is resolved: {REASONS}. Only for an incident that is or becomes resolved "
        "(400 `resolution_reason_needs_resolved`); resolving without one records `fixed`, and "
        f"reopening clears it. {REASON_RULES}.",
    )
    leadId: Id | None = Field(
        None,
        description="A new lead must be an active user with Manage incidents on one of the incident's "
        "datasets, or 400 (`unknown_lead`, `lead_cannot_view`, `lead_cannot_manage`); the current lead, "
        "sent again, is kept as it is.",
    )
    version: Version | None = Field(
        None, description="The version you read; a stale one gets 409 and changes nothing."
    )


class AttachIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _one_of_the_two("checkResultIds", "monitorResultIds", {"type": "array"}),
                _NOT_BOTH_RESULT_LISTS,
            ]
        }
    )

    checkResultIds: ResultIds | None = Field(
        None,
        description="Warn or fail results to add, at least one; each must exist, be one you can see, "
        "and warn or fail (else 400). Results already linked are left as they are. Alias "
        "`monitorResultIds`; give one of the two.",
        examples=[[540]],
    )
    monitorResultIds: ResultIds | None = Field(None, description="`checkResultIds` under Soda's older name.")
    version: Version | None = Field(None, description="The version you read; a stale one gets 409.")


class CommentIn(Body):
    text: str = text(
        description="The comment: not blank; may span lines.",
        max_length=services.COMMENT_MAX,
        pattern=NON_BLANK_TEXT_PATTERN,
        examples=["The collector was restarted at 09:10; late sessions are arriving again."],
    )


# The incident a merge goes into: its own example, an open incident of the demo (3 is resolved by
# the update examples, which run before).
MergeTargetId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The id of the incident to merge into (it must be open).", example=9),
]


class MergeIn(Body):
    incidentIds: Annotated[list[Id], Field(min_length=1, max_length=merging.MERGED_MAX)] = Field(
        description="The ids (not numbers) of the incidents to merge into this one, at least one; not this "
        "incident itself (400 `merge_into_itself`). Each must be one you can see (404 otherwise).",
        examples=[[10]],
    )


class BulkIn(Body):
    incidentIds: Annotated[list[Id], Field(min_length=1, max_length=merging.BULK_MAX)] = Field(
        description="The ids (not numbers) of the incidents to change, at least one.", examples=[[9, 10]]
    )
    leadId: Id | None = Field(
        None,
        description="A new lead for each: an active user with Manage incidents on one of its datasets, or "
        "that incident is refused (`unknown_lead`, `lead_cannot_view`, `lead_cannot_manage`).",
    )
    status: StatusName | None = Field(
        None,
        description=f"A new status for each: {STATUSES}. Resolving an incident needs resolution notes, given "
        "here or kept from before, or that incident is refused (`resolution_notes_required`).",
    )
    severity: SeverityName | None = Field(None, description=f"A new severity for each: {SEVERITIES}.")
    resolutionReason: ReasonName | None = Field(
        None,
        description=f"Why they are resolved: {REASONS}; as for one incident, an incident that stays open is "
        "refused (`resolution_reason_needs_resolved`), and `recovered` is refused "
        "(`resolution_reason_reserved`).",
    )
    resolutionNotes: str | None = text(
        None,
        description="New resolution notes for each.",
        max_length=services.DESCRIPTION_MAX,
        pattern=TEXT_PATTERN,
    )


class RefusalOut(Schema):
    id: int = Field(description="The id of the incident left as it was.")
    number: int | None = Field(description="Its number; null for an incident you cannot see.")
    code: str = Field(description="Why, for programs: the code a change of this incident alone would get.")
    message: str = Field(description="Why, for people.")


class BulkOut(Schema):
    changed: list[int] = Field(
        description="The ids of the incidents changed (one that had the values already counts), in id order."
    )
    refused: list[RefusalOut] = Field(description="The incidents left as they were, and why, in id order.")


class TimelineEventOut(Schema):
    id: int = Field(description="The event's id.")
    type: str = Field(
        description="What happened: `created`, `changed`, `reopened`, `resultAttached`, `comment`, "
        "`checkPassed` (a linked check passed again: `text` is its name, `checkResult` the pass) or "
        "`merged`."
    )
    actor: UserRef | None = Field(
        description="Who did it: Quell itself (name `Quell`, see `automatic`) for what the incident "
        "rules and folding do; null when the person is gone."
    )
    automatic: bool = Field(description="Whether Quell did it by itself (an incident rule, or folding).")
    ruleName: str | None = Field(
        description="The incident rule Quell acted for, by the name it had then; null for a person's "
        "change and for folding a result into an open incident (an organisation setting, not a rule)."
    )
    created: datetime = Field(description="When it happened.")
    field: str | None = Field(
        description="For a change: the field that changed (`status`, `lead`, `resolutionReason`, ...)."
    )
    oldValue: Any = Field(
        description="For a change: the value before (for `lead`, the user). For `merged` (field `merged`): "
        "the incident merged, as `id`, `number` and `title`."
    )
    newValue: Any = Field(
        description="For a change: the value after (for `lead`, the user). For `merged`: the incident it "
        "was merged into, as `id`, `number` and `title` (this one, on the timeline of the one merged into)."
    )
    text: str | None = Field(
        description="A comment's text, or the title the incident was created with; for `merged`, the other "
        "incident as `#N title`."
    )
    checkResult: LinkedResultOut | None = Field(
        description="For `resultAttached` and `checkPassed`: the result."
    )


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
        max_length=CURSOR_MAX,
        pattern=CURSOR_PATTERN,
        description="A `nextCursor` from the previous page of the same list; `page` is then ignored. "
        "Any other cursor is a 400 `invalid_cursor`.",
    )
    status: list[StatusName] = Field(
        default_factory=list,
        max_length=len(get_args(StatusName)),
        description=f"Keeps incidents in these statuses: {STATUSES} (repeat the parameter).",
    )
    severity: list[SeverityName] = Field(
        default_factory=list,
        max_length=len(get_args(SeverityName)),
        description=f"Keeps incidents of these severities: {SEVERITIES} (repeat the parameter).",
    )
    resolutionReason: list[ReasonName] = Field(
        default_factory=list,
        max_length=len(get_args(ReasonName)),
        description=f"Keeps incidents resolved for these reasons: {REASONS} (repeat the parameter).",
    )
    datasetId: list[Id] = Field(
        default_factory=list,
        max_length=PEOPLE_OR_DATASETS_MAX,
        description="Keeps incidents about any of these datasets.",
    )
    leadId: list[Id] = Field(
        default_factory=list,
        max_length=PEOPLE_OR_DATASETS_MAX,
        description="Keeps incidents these users lead.",
    )
    reporterId: list[Id] = Field(
        default_factory=list,
        max_length=PEOPLE_OR_DATASETS_MAX,
        description="Keeps incidents these users reported.",
    )
    incidentIds: list[Id] = Field(
        default_factory=list, max_length=INCIDENT_IDS_MAX, description="Keeps the incidents with these ids."
    )
    search: str = Field("", max_length=SEARCH_MAX, description="Words that must all appear in the title.")
    from_: UtcDatetime | None = Field(
        None, alias="from", description="Keeps incidents created at or after this."
    )
    to: UtcDatetime | None = Field(None, description="Keeps incidents created before this.")


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
    incidents: Iterable[Incident], details: dict[int, incident_details.IncidentDetails]
) -> list[dict[str, Any]]:
    """Serialise incidents with their details (incident_details.details_of / details_from_loaded)."""
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
                "rule": {"id": d.rule.id, "name": d.rule.name} if d.rule is not None else None,
                "created": i.created_at,
                "lastUpdated": i.updated_at,
                "resolvedAt": i.resolved_at,
                "resolutionNotes": i.resolution_notes,
                "resolutionReason": i.resolution_reason or None,
                # Kept by the rules while open; a resolved incident's last value says nothing.
                "passingSince": i.passing_since if i.is_open else None,
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
            "automatic": e.actor is not None and e.actor.is_system,
            "ruleName": e.rule_name or None,
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
    return incident_out([incident], {incident.pk: incident_details.details_from_loaded(incident)})[0]


def _title(title: str | None, name: str | None) -> str | None:
    if title is not None and name is not None:
        # `title` wins, but `name` is read as the schema reads it all the same.
        services.check_title(name)
    return title if title is not None else name


def _result_ids(ids: list[int] | None, alias: list[int] | None) -> list[int]:
    if ids is not None and alias is not None:
        raise Invalid("Give checkResultIds or monitorResultIds, not both.", field="checkResultIds")
    return ids if ids is not None else (alias or [])


@router.get(
    "/incidents",
    response={200: IncidentPage, **COMMON_ERRORS, **UNPROCESSABLE},
    summary="List incidents you can view",
    description="The incidents on a dataset you hold View dataset on (admins: all), newest first. The "
    "filters combine (a list parameter matches any of its values). For deep pages follow "
    "`nextCursor` rather than counting `page` up; a cursor this list did not give out is a 400 "
    "`invalid_cursor`. Above 10,000 matches (1,000 with `search`) `totalElements` stops counting and "
    "`totalElementsExact` is false.",
)
def list_incidents(request: HttpRequest, query: Query[IncidentQuery]) -> HttpResponse:
    by = caller(request)
    filters = incident_queries.IncidentFilters(
        statuses=list(query.status),
        severities=list(query.severity),
        resolution_reasons=list(query.resolutionReason),
        dataset_ids=query.datasetId,
        lead_ids=query.leadId,
        reporter_ids=query.reporterId,
        incident_ids=query.incidentIds,
        search=query.search,
        created_from=query.from_,
        created_to=query.to,
    )
    chosen, counts = incident_queries.find_incidents(filters, by=by)
    found = incident_paging.page_of(
        chosen,
        counts,
        filters.statuses,
        size=query.size,
        page=query.page,
        cursor=query.cursor,
    )
    page = {
        "content": incident_out(found.rows, incident_details.details_of(found.rows, by=by)),
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


@router.post(
    "/incidents",
    response={201: IncidentOut, **WRITE_ERRORS, 409: DuplicateOut, **UNPROCESSABLE},
    summary="Create an incident",
    description="Opens an incident from warn or fail check results. Needs Manage incidents on the "
    "dataset of every result (403 otherwise). The results must exist, be visible to you and warn or "
    "fail (400 `unknown_check_results`, `check_result_not_failing`), and not already in an open "
    "incident you can see unless `allowDuplicate` is true (409 `duplicate_incident`, with the newest "
    "such incident: add the results to it instead); the lead, you unless `leadId` "
    "names another, must be an active user with Manage incidents on one of their datasets (400 "
    "`unknown_lead`, `lead_cannot_view`, `lead_cannot_manage`). A resolution note is required to "
    "create it resolved; a `resolutionReason` goes with status `resolved` only (400 "
    "`resolution_reason_needs_resolved`), is `fixed` when left out, and may not be `recovered` (400 "
    "`resolution_reason_reserved`).",
    openapi_extra=request_examples(
        emails=(
            "From the demo's failing missing_count(email) on snowflake_prod/customers",
            {
                "title": "Customers without email after the CRM import",
                "description": "Three customers arrived without an email address.",
                "severity": "major",
                "checkResultIds": [397],
            },
        ),
        soda=(
            "Soda Cloud's spelling: name and monitorResultIds, with a lead",
            {"name": "Users with invalid country codes", "monitorResultIds": [194], "leadId": 2},
        ),
    ),
)
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
        resolution_reason=payload.resolutionReason,
        allow_duplicate=payload.allowDuplicate,
    )
    return Status(201, _one(incident))


# Before "/incidents/{incident_id}", whose path would take "bulk" for an id: Django tries the URLs in
# the order they are declared.
@router.post(
    "/incidents/bulk",
    response={200: BulkOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Change several incidents at once",
    description="Sets the lead, status, severity or resolution (any of them) of each incident named, at "
    "most 200, each on its own, as `PATCH /incidents/{id}` would: an incident you cannot see, may not "
    "change (Manage incidents on one of its datasets) or whose change breaks a rule is left as it is and "
    "listed in `refused` with the code and message that change alone would get, and the others are "
    "changed all the same. A body that changes nothing is a 400 `changes_required`.",
    openapi_extra=request_examples(
        lead=(
            "Hand the demo's incidents 9 and 10 to Marco Rossi, who manages every dataset",
            {"incidentIds": [9, 10], "leadId": 2},
        ),
        severity=("Make them both major", {"incidentIds": [9, 10], "severity": "major"}),
    ),
)
def change_incidents(request: HttpRequest, payload: BulkIn) -> dict[str, Any]:
    outcome = merging.change_incidents(
        payload.incidentIds,
        by=caller(request),
        lead_id=payload.leadId,
        status=payload.status,
        severity=payload.severity,
        resolution_reason=payload.resolutionReason,
        resolution_notes=payload.resolutionNotes,
    )
    return {
        "changed": [incident.pk for incident in outcome.changed],
        "refused": [refusal | {"number": refusal.get("number")} for refusal in outcome.refused],
    }


@router.get(
    "/incidents/{incident_id}",
    response={200: IncidentOut, **COMMON_ERRORS, 404: ErrorOut},
    summary="One incident",
    description="Needs View dataset on one of its datasets (404 otherwise); its results and datasets "
    "list only those you can view.",
)
def get_incident(request: HttpRequest, incident_id: IncidentId) -> HttpResponse:
    by = caller(request)
    incident = incident_queries.incident_alone(incident_id, by=by)
    return rows_response(
        IncidentOut, incident_out([incident], incident_details.details_of([incident], by=by))[0]
    )


def _update(request: HttpRequest, incident_id: int, payload: IncidentUpdateIn) -> Any:
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
            resolution_reason=payload.resolutionReason,
            lead_id=payload.leadId,
        )
    except Conflict as conflict:
        return Status(
            409, conflict.as_dict() | {"current": _one(incident_queries.get_incident(incident_id, by=by))}
        )
    return Status(200, _one(incident))


UPDATE_RESPONSES: dict[int, Any] = {200: IncidentOut, **WRITE_ERRORS, 409: ConflictOut, **UNPROCESSABLE}
UPDATE_DESCRIPTION = (
    "Changes the fields given; fields left out or null stay as they are, and values equal to the "
    "current ones change nothing. Needs Manage incidents on one of the incident's datasets (403 "
    "otherwise; 404 if you cannot view it). Send the `version` you read to refuse a stale change "
    "(409 with the incident as it is now). Resolving needs resolution notes, given or kept (400 "
    "`resolution_notes_required`), and records `resolutionReason` (`fixed` when left out); a reason is "
    "given only for an incident that is or becomes resolved (400 `resolution_reason_needs_resolved`), "
    "may change while it stays resolved, is cleared by reopening, and may not be `recovered` (400 "
    "`resolution_reason_reserved`); a new lead must be an active user with Manage incidents on one of "
    "the incident's datasets (400 `unknown_lead`, `lead_cannot_view`, `lead_cannot_manage`)."
)
UPDATE_EXAMPLES = request_examples(
    fixing=("Move the demo's incident 3 to fixing", {"status": "fixing"}),
    resolve=(
        "Resolve it, with the note that is required",
        {
            "status": "resolved",
            "resolutionNotes": "The collector was restarted; sessions arrive on time again.",
            "resolutionReason": "fixed",
        },
    ),
    lead=("Hand it to Marco Rossi, who manages every dataset", {"leadId": 2, "severity": "critical"}),
)


@router.post(
    "/incidents/{incident_id}",
    response=UPDATE_RESPONSES,
    summary="Update an incident (Soda style)",
    description=f"The same as PATCH, for Soda Cloud's clients. {UPDATE_DESCRIPTION}",
    openapi_extra=UPDATE_EXAMPLES,
)
def update_incident_post(request: HttpRequest, incident_id: IncidentId, payload: IncidentUpdateIn) -> Any:
    return _update(request, incident_id, payload)


@router.patch(
    "/incidents/{incident_id}",
    response=UPDATE_RESPONSES,
    summary="Update an incident",
    description=UPDATE_DESCRIPTION,
    openapi_extra=UPDATE_EXAMPLES,
)
def update_incident_patch(request: HttpRequest, incident_id: IncidentId, payload: IncidentUpdateIn) -> Any:
    return _update(request, incident_id, payload)


@router.post(
    "/incidents/{incident_id}/checkResults",
    response=UPDATE_RESPONSES,
    summary="Attach more check results",
    description="Links more warn or fail results; results already linked are left as they are. Needs "
    "Manage incidents on one of the incident's datasets and on the dataset of every result (403 "
    "otherwise; 404 if you cannot view the incident). The results must exist, be visible to you and "
    "warn or fail (400 `unknown_check_results`, `check_result_not_failing`). Send the `version` you "
    "read to refuse a stale change (409).",
    openapi_extra=request_examples(
        warning=(
            "Add the demo's missing_percent(user_id) warning on postgres_app/sessions to incident 3",
            {"checkResultIds": [540]},
        )
    ),
)
def attach_check_results(request: HttpRequest, incident_id: IncidentId, payload: AttachIn) -> Any:
    by = caller(request)
    try:
        incident = services.attach_check_results(
            incident_id,
            _result_ids(payload.checkResultIds, payload.monitorResultIds),
            by=by,
            version=payload.version,
        )
    except Conflict as conflict:
        return Status(
            409, conflict.as_dict() | {"current": _one(incident_queries.get_incident(incident_id, by=by))}
        )
    return Status(200, _one(incident))


@router.get(
    "/incidents/{incident_id}/timeline",
    response={200: list[TimelineEventOut], **COMMON_ERRORS, 404: ErrorOut},
    summary="Every change, attached result and comment, oldest first",
    description="Needs View dataset on one of the incident's datasets (404 otherwise).",
)
def get_timeline(request: HttpRequest, incident_id: IncidentId) -> list[dict[str, Any]]:
    return timeline_out(incident_queries.timeline(incident_id, by=caller(request)))


@router.post(
    "/incidents/{incident_id}/comments",
    response={201: TimelineEventOut, **WRITE_ERRORS},
    summary="Comment on an incident",
    description="Adds a comment to the timeline; it moves `lastUpdated` but not `version`. Needs Manage "
    "incidents on one of the incident's datasets (403 otherwise; 404 if you cannot view it).",
    openapi_extra=request_examples(
        note=(
            "A note on the demo's incident 3",
            {"text": "The collector was restarted at 09:10; late sessions are arriving again."},
        )
    ),
)
def add_comment(request: HttpRequest, incident_id: IncidentId, payload: CommentIn) -> Status[dict[str, Any]]:
    event = services.add_comment(incident_id, payload.text, by=caller(request))
    return Status(201, timeline_out([event])[0])


@router.post(
    "/incidents/{incident_id}/merge",
    response={200: IncidentOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Merge incidents into this one",
    description="Links every check result and dataset of the incidents named to this one, resolves each "
    'of them that is open as `duplicate` with the note "Merged into #N <title>.", and says so on both '
    "timelines (`merged` events); the merged incidents keep their own results. All or nothing: needs "
    "Manage incidents on one of the datasets of this incident and of every one merged (403 naming those "
    "you lack it on; 404 for one you cannot see), and this incident must be open (400 "
    "`merge_target_resolved`); at most 100 at once, never this incident itself (400 `merge_into_itself`). "
    "Answers this incident as it is after the merge.",
    openapi_extra=request_examples(
        merge=("Merge the demo's incident 10 into incident 9, both open", {"incidentIds": [10]}),
    ),
)
def merge_incidents(request: HttpRequest, incident_id: MergeTargetId, payload: MergeIn) -> dict[str, Any]:
    return _one(merging.merge_incidents(incident_id, payload.incidentIds, by=caller(request)))
