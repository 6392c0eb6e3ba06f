"""REST endpoints for integrations (admins), their delivery logs, and the receivers' link-back URL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Status
from pydantic import ConfigDict
from pydantic.config import JsonDict

from quell.api.base import (
    MAX_ID,
    UNPROCESSABLE,
    WRITE_ERRORS,
    Body,
    Id,
    Page,
    PageParams,
    Schema,
    caller,
    paginate,
    request_examples,
    text,
)
from quell.integrations import services
from quell.integrations.models import (
    SEVERITY_RANK,
    SUBSCRIBABLE_EVENTS,
    Delivery,
    DeliveryAttempt,
    Integration,
    Kind,
)
from quell.integrations.transport import HEADER_NAME
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN, WHITESPACE, escaped

router = Router(tags=["integrations"])

KindName = Literal["webhook", "slack", "msteams"]
EventName = Literal["incidentCreated", "incidentUpdated", "checkEvaluation"]
SeverityFloor = Literal["", "minor", "major", "critical"]
OutcomeFloor = Literal["warn", "fail"]
StatusName = Literal["pending", "delivering", "delivered", "failed"]
assert list(get_args(KindName)) == list(Kind.values)
assert list(get_args(EventName)) == list(SUBSCRIBABLE_EVENTS)
assert list(get_args(SeverityFloor)) == ["", *SEVERITY_RANK]
IntegrationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The integration's id.", example=1)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id.", example=1)]


def _any_case(word: str) -> str:
    return "".join(f"[{ch.upper()}{ch.lower()}]" if ch.isalpha() else ch for ch in word)


# What services.create_integration checks of a URL before the host and the network policy (400):
# http(s), at most URL_MAX characters, no whitespace.
URL_PATTERN = f"^{_any_case('http')}[Ss]?://[^{escaped(WHITESPACE)}\\u0000]+$"
# A custom header as transport.header_problem and services._clean_headers take it.
HEADER_NAME_PATTERN = f"^{HEADER_NAME.pattern}$"
RESERVED_HEADER_PATTERN = (
    "^(?:"
    + "|".join(_any_case(name) for name in sorted(services.RESERVED_HEADERS))
    + f")$|^{_any_case('webhook-')}"
)
HEADER_VALUE_PATTERN = "^(?:[\\u0021-\\u007e](?:[\\u0020\\u0009]*[\\u0021-\\u007e])*)?$"
HEADERS_SCHEMA: JsonDict = {
    "maxProperties": services.MAX_HEADERS,
    "propertyNames": {
        "pattern": HEADER_NAME_PATTERN,
        "maxLength": services.HEADER_NAME_MAX,
        "not": {"pattern": RESERVED_HEADER_PATTERN},
    },
    "additionalProperties": {
        "type": "string",
        "pattern": HEADER_VALUE_PATTERN,
        "maxLength": services.HEADER_VALUE_MAX,
    },
}
HEADERS_RULES = (
    f"At most {services.MAX_HEADERS}; names of letters, digits and !#$%&'*+-.^_`|~ (at most "
    f"{services.HEADER_NAME_MAX} characters, none of Content-Type, Content-Length, Host, Transfer-Encoding, "
    "Connection, User-Agent or Webhook-*, and no name twice in any case: 400), values of visible ASCII "
    f"with inner spaces (at most {services.HEADER_VALUE_MAX} characters)."
)
EVENTS = "`incidentCreated`, `incidentUpdated` and `checkEvaluation` (every warn or fail result pushed)"


class IntegrationIn(Body):
    # Custom headers are for webhooks (services._clean_headers).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"kind": {"const": "webhook"}}},
                {"properties": {"headers": {"anyOf": [{"type": "null"}, {"maxProperties": 0}]}}},
            ]
        }
    )

    name: str = text(
        description="What the settings call it: one line, not blank.",
        max_length=services.NAME_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["Incident webhook"],
    )
    kind: KindName = Field(description="`webhook` (Standard Webhooks, signed), `slack` or `msteams`.")
    url: str = Field(
        ...,
        max_length=services.URL_MAX,
        json_schema_extra={"pattern": URL_PATTERN},
        description="Where to send: an http(s) URL without credentials. A host that is not a valid name or "
        "address, or an address the installation's network policy refuses (loopback, private, "
        "link-local, unless QUELL_WEBHOOK_ALLOWED_NETWORKS lists it), is a 400. For Slack and Teams "
        "this URL is a secret: it is not shown again.",
        examples=["https://hooks.example.com/quell"],
    )
    events: list[EventName] | None = Field(
        None, description=f"What to send: {EVENTS}. Left out: incidentCreated and incidentUpdated."
    )
    headers: dict[str, str] | None = Field(
        None,
        description=f"Custom headers for a webhook (other kinds take none); values are not shown again. {HEADERS_RULES}",
        json_schema_extra=HEADERS_SCHEMA,
    )
    datasetIds: list[Id] | None = Field(
        None,
        description="Only events about these datasets; none means all. An id that names no dataset is a 400.",
    )
    minSeverity: SeverityFloor | None = Field(
        "", description="Incident events only for incidents at least this severe; empty: all."
    )
    minOutcome: OutcomeFloor | None = Field(
        "warn", description="checkEvaluation: warn and fail results, or fail only."
    )
    enabled: bool = Field(True, description="Whether it sends; off, events wait until it is turned on.")


class IntegrationUpdateIn(Body):
    name: str | None = text(
        None,
        description="A new name: one line, not blank.",
        max_length=services.NAME_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    url: str | None = Field(
        None,
        max_length=services.URL_MAX,
        json_schema_extra={"pattern": URL_PATTERN},
        description="A new URL, as for creating one (400 for a host the policy refuses).",
    )
    events: list[EventName] | None = Field(None, description=f"What to send: {EVENTS}.")
    headers: dict[str, str] | None = Field(
        None,
        description=f"Replaces every custom header; only webhooks take them (400 for other kinds). {HEADERS_RULES}",
        json_schema_extra=HEADERS_SCHEMA,
    )
    datasetIds: list[Id] | None = Field(
        None, description="Only events about these datasets; empty: all. An unknown id is a 400."
    )
    minSeverity: SeverityFloor | None = Field(None, description="Incident events only at least this severe.")
    minOutcome: OutcomeFloor | None = Field(
        None, description="checkEvaluation: `warn` and fail, or `fail` only."
    )
    enabled: bool | None = Field(
        None, description="Turn it on or off; turning it on sends what waited at once."
    )


class IntegrationOut(Schema):
    id: int = Field(description="The integration's id.")
    name: str = Field(description="What the settings call it.")
    kind: KindName = Field(description="`webhook`, `slack` or `msteams`.")
    url: str = Field(..., description="A hint only: no query string, and no path for Slack and Teams.")
    headerNames: list[str] = Field(description="The custom headers' names (their values are secret).")
    events: list[str] = Field(description=f"What it sends: {EVENTS}.")
    datasetIds: list[int] = Field(description="Only events about these datasets; empty: all.")
    minSeverity: str = Field(description="Incident events only at least this severe; empty: all.")
    minOutcome: str = Field(description="checkEvaluation: from `warn` or from `fail`.")
    enabled: bool = Field(description="Whether it sends.")
    disabledReason: str = Field(description="Why Quell turned it off (its receiver answered 410), if it did.")
    disabledAt: datetime | None = Field(description="When Quell turned it off.")
    signed: bool = Field(description="Whether deliveries are signed (webhooks).")
    previousSecretExpiresAt: datetime | None = Field(
        description="Until when the secret before the last rotation signs too."
    )
    pendingDeliveries: int = Field(description="Deliveries on their way.")
    failedDeliveries: int = Field(description="Deliveries that failed and were not sent again since.")
    created: datetime = Field(description="When it was created.")
    lastUpdated: datetime = Field(description="When it last changed.")


class IntegrationCreatedOut(IntegrationOut):
    secret: str | None = Field(
        None, description="The signing secret (whsec_...), for webhooks; shown in this answer only."
    )


class SecretOut(Schema):
    secret: str = Field(description="The new signing secret (whsec_...); shown in this answer only.")
    previousSecretExpiresAt: datetime | None = Field(description="Until when the old secret signs too.")


class DeliveryOut(Schema):
    id: int = Field(description="The delivery's id.")
    webhookId: str = Field(description="The event's webhook-id header (the same on a redelivery).")
    event: str = Field(description="The event's type (`incidentCreated`, ..., `validate` for a test).")
    incidentId: int | None = Field(description="The incident it is about, if any.")
    incidentNumber: int | None = Field(description="That incident's number.")
    status: StatusName = Field(description="`pending`, `delivering`, `delivered` or `failed`.")
    attempts: int = Field(description="How many times it was tried.")
    nextAttemptAt: datetime | None = Field(description="When the next try is due, while pending.")
    lastStatusCode: int | None = Field(description="The receiver's last HTTP status, if it answered.")
    lastError: str = Field(description="What went wrong last, if anything.")
    created: datetime = Field(description="When the delivery was made.")
    finished: datetime | None = Field(description="When it was delivered or given up.")
    redeliveryOf: int | None = Field(description="The delivery this one sends again, if any.")


class AttemptOut(Schema):
    number: int = Field(description="The attempt's number, from 1.")
    started: datetime = Field(description="When it started.")
    durationMs: int = Field(description="How long it took, in milliseconds.")
    statusCode: int | None = Field(description="The receiver's HTTP status, if it answered.")
    outcome: str = Field(description="How it went (`delivered`, `retry`, `failed`, ...).")
    error: str = Field(description="What went wrong, if anything.")
    responseExcerpt: str = Field(description="The start of the receiver's answer.")
    nextAttemptAt: datetime | None = Field(description="When the next attempt was planned.")


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any] = Field(description="The JSON body sent.")
    attemptLog: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class DeliveryQuery(PageParams):
    status: StatusName | None = Field(None, description="Keeps the deliveries in this status.")


class LinkIn(Schema):
    url: str = Field(..., max_length=10_000)
    text: str = Field("", max_length=10_000)


class ExternalLinkOut(Schema):
    """A link a receiver gave back for an incident (e.g. its Jira ticket), shown on the incident."""

    url: str = Field(description="Where the link leads (a ticket, a thread).")
    text: str = Field(description="The link's text (the integration's name when the receiver gave none).")
    integrationType: str = Field(description="The kind of integration that gave it.")
    integrationName: str = Field(description="That integration's name.")
    updated: datetime | None = Field(description="When the receiver last set it.")


class LinkOut(Schema):
    url: str
    text: str


def integration_out(integrations: Iterable[Integration]) -> list[dict[str, Any]]:
    """Serialise integrations loaded through services (with counts and datasets)."""
    return [
        {
            "id": i.pk,
            "name": i.name,
            "kind": i.kind,
            "url": i.url_hint,
            "headerNames": i.header_names,
            "events": i.events,
            "datasetIds": sorted(d.pk for d in i.datasets.all()),
            "minSeverity": i.min_severity,
            "minOutcome": i.min_outcome,
            "enabled": i.enabled,
            "disabledReason": i.disabled_reason,
            "disabledAt": i.disabled_at,
            "signed": bool(i.secret),
            "previousSecretExpiresAt": i.previous_secret_expires_at if i.previous_secret else None,
            "pendingDeliveries": i.pending_count,  # type: ignore[attr-defined]
            "failedDeliveries": i.failed_count,  # type: ignore[attr-defined]
            "created": i.created_at,
            "lastUpdated": i.updated_at,
        }
        for i in integrations
    ]


def delivery_out(deliveries: Iterable[Delivery]) -> list[dict[str, Any]]:
    return [
        {
            "id": d.pk,
            "webhookId": d.event.message_id,
            "event": d.event.type,
            "incidentId": d.incident_id,
            "incidentNumber": d.incident.number if d.incident else None,
            "status": d.status,
            "attempts": d.attempts,
            "nextAttemptAt": d.next_attempt_at if d.status == "pending" else None,
            "lastStatusCode": d.last_status_code,
            "lastError": d.last_error,
            "created": d.created_at,
            "finished": d.finished_at,
            "redeliveryOf": d.redelivery_of_id,
        }
        for d in deliveries
    ]


def attempt_out(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started": attempt.started_at,
        "durationMs": attempt.duration_ms,
        "statusCode": attempt.status_code,
        "outcome": attempt.outcome,
        "error": attempt.error,
        "responseExcerpt": attempt.response_excerpt,
        "nextAttemptAt": attempt.next_attempt_at,
    }


def delivery_detail(delivery: Delivery) -> dict[str, Any]:
    return delivery_out([delivery])[0] | {
        "payload": delivery.event.payload,
        "attemptLog": [attempt_out(a) for a in delivery.attempt_log.all()],
    }


RESPONSES = WRITE_ERRORS
ADMINS = "Admins only (403 for others)."


@router.get(
    "",
    response={200: Page[IntegrationOut], **RESPONSES},
    summary="List integrations (admins)",
    description=f"Every integration, by name. {ADMINS}",
)
def list_integrations(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    integrations = services.list_integrations(by=caller(request)).prefetch_related("datasets")
    return paginate(integrations, paging.page, paging.size, integration_out)


@router.post(
    "",
    response={201: IntegrationCreatedOut, **RESPONSES, **UNPROCESSABLE},
    summary="Create an integration",
    description=f"{ADMINS} A webhook's signing secret is in this answer only. The URL's host must be a "
    "valid name or address the installation may send to, and `datasetIds` must name datasets (400 "
    "otherwise: `invalid_url`, `address_refused`, `unknown_datasets`, `invalid_headers`).",
    openapi_extra=request_examples(
        webhook=(
            "A signed webhook for major and critical incidents on snowflake_prod/orders",
            {
                "name": "Incident webhook",
                "kind": "webhook",
                "url": "https://hooks.example.com/quell",
                "events": ["incidentCreated", "incidentUpdated"],
                "headers": {"Authorization": "Bearer 0123456789abcdef"},
                "datasetIds": [5],
                "minSeverity": "major",
            },
        ),
        slack=(
            "Failing results to a Slack channel",
            {
                "name": "Data quality alerts",
                "kind": "slack",
                "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
                "events": ["checkEvaluation"],
                "minOutcome": "fail",
            },
        ),
    ),
)
def create_integration(request: HttpRequest, payload: IntegrationIn) -> Status[dict[str, Any]]:
    integration, secret = services.create_integration(
        by=caller(request),
        name=payload.name,
        kind=payload.kind,
        url=payload.url,
        events=list(payload.events) if payload.events is not None else None,
        headers=payload.headers,
        dataset_ids=payload.datasetIds,
        min_severity=payload.minSeverity,
        min_outcome=payload.minOutcome,
        enabled=payload.enabled,
    )
    return Status(201, integration_out([integration])[0] | {"secret": secret})


@router.get(
    "/{integration_id}",
    response={200: IntegrationOut, **RESPONSES},
    summary="One integration",
    description=f"{ADMINS}",
)
def get_integration(request: HttpRequest, integration_id: IntegrationId) -> dict[str, Any]:
    return integration_out([services.get_integration(integration_id, by=caller(request))])[0]


@router.patch(
    "/{integration_id}",
    response={200: IntegrationOut, **RESPONSES, **UNPROCESSABLE},
    summary="Change an integration",
    description=f"{ADMINS} Fields left out or null stay as they are; `headers` replaces all custom "
    "headers. The rules of creating one apply (400 `invalid_url` or `address_refused` for a URL "
    "the policy refuses, `unknown_datasets`, `invalid_headers` for headers on a Slack or Teams "
    "integration). Turning it on sends what waited at once.",
    openapi_extra=request_examples(
        quiet=("Only critical incidents, and turn it on", {"minSeverity": "critical", "enabled": True}),
        rename=("A new name and URL", {"name": "Orders webhook", "url": "https://hooks.example.com/orders"}),
    ),
)
def update_integration(
    request: HttpRequest, integration_id: IntegrationId, payload: IntegrationUpdateIn
) -> dict[str, Any]:
    integration = services.update_integration(
        integration_id,
        by=caller(request),
        name=payload.name,
        url=payload.url,
        events=list(payload.events) if payload.events is not None else None,
        headers=payload.headers,
        dataset_ids=payload.datasetIds,
        min_severity=payload.minSeverity,
        min_outcome=payload.minOutcome,
        enabled=payload.enabled,
    )
    return integration_out([integration])[0]


@router.delete(
    "/{integration_id}",
    response={204: None, **RESPONSES},
    summary="Delete an integration and its log",
    description=f"{ADMINS} Deliveries on their way are dropped.",
)
def delete_integration(request: HttpRequest, integration_id: IntegrationId) -> Status[None]:
    services.delete_integration(integration_id, by=caller(request))
    return Status(204, None)


@router.post(
    "/{integration_id}/rotateSecret",
    response={200: SecretOut, **RESPONSES, **UNPROCESSABLE},
    summary="New signing secret; the old one signs too for 24 hours",
    description=f"{ADMINS} Webhooks only (400 `not_signed` for Slack and Teams, whose URL is the "
    "secret). The new secret is in this answer only.",
)
def rotate_secret(request: HttpRequest, integration_id: IntegrationId) -> dict[str, Any]:
    integration, secret = services.rotate_secret(integration_id, by=caller(request))
    return {"secret": secret, "previousSecretExpiresAt": integration.previous_secret_expires_at}


@router.post(
    "/{integration_id}/test",
    response={202: DeliveryOut, **RESPONSES, **UNPROCESSABLE},
    summary="Send a test message",
    description=f"{ADMINS} Queues a `validate` event for this integration alone; the worker sends it. "
    "The integration must be on (400 `integration_off`).",
)
def send_test(request: HttpRequest, integration_id: IntegrationId) -> Status[dict[str, Any]]:
    delivery = services.send_test(integration_id, by=caller(request))
    return Status(
        202, delivery_out([services.get_delivery(integration_id, delivery.pk, by=caller(request))])[0]
    )


@router.get(
    "/{integration_id}/deliveries",
    response={200: Page[DeliveryOut], **RESPONSES},
    summary="The delivery log, newest first",
    description=f"{ADMINS}",
)
def list_deliveries(
    request: HttpRequest, integration_id: IntegrationId, query: Query[DeliveryQuery]
) -> dict[str, Any]:
    deliveries = services.list_deliveries(integration_id, by=caller(request), status=query.status)
    return paginate(deliveries, query.page, query.size, delivery_out)


@router.get(
    "/{integration_id}/deliveries/{delivery_id}",
    response={200: DeliveryDetailOut, **RESPONSES},
    summary="One delivery with its payload and every attempt",
    description=f"{ADMINS}",
)
def get_delivery(
    request: HttpRequest, integration_id: IntegrationId, delivery_id: DeliveryId
) -> dict[str, Any]:
    return delivery_detail(services.get_delivery(integration_id, delivery_id, by=caller(request)))


@router.post(
    "/{integration_id}/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut, **RESPONSES, **UNPROCESSABLE},
    summary="Send a delivered or failed event again (same webhook-id)",
    description=f"{ADMINS} As a new delivery. The delivery must be finished (400 "
    "`delivery_unfinished`) and the integration on (400 `integration_off`).",
)
def redeliver(
    request: HttpRequest, integration_id: IntegrationId, delivery_id: DeliveryId
) -> Status[dict[str, Any]]:
    delivery = services.redeliver(integration_id, delivery_id, by=caller(request))
    return Status(202, delivery_out([delivery])[0])


Token = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


# Its only credential is the token in its URL (no API key), so it is left out of the API's schema, whose
# operations all take one; docs/integrations/README.md documents it.
@router.post(
    "/incident-links/{token}",
    auth=None,
    include_in_schema=False,
    response={200: LinkOut, **RESPONSES},
    summary="A receiver links an incident to something (its incidentLinkCallbackUrl)",
)
def set_incident_link(request: HttpRequest, token: Token, payload: LinkIn) -> dict[str, Any]:
    link = services.set_incident_link(token, url=payload.url, text=payload.text)
    return {"url": link.url, "text": link.text}
