"""REST endpoints for integrations (admins), their delivery logs, and the receivers' link-back URL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Status

from quell.api.base import (
    WRITE_ERRORS,
    Id,
    Page,
    PageParams,
    PathId,
    Schema,
    caller,
    paginate,
)
from quell.integrations import services
from quell.integrations.models import Delivery, DeliveryAttempt, Integration

router = Router(tags=["integrations"])

KindName = Literal["webhook", "slack", "msteams"]
EventName = Literal["incidentCreated", "incidentUpdated", "checkEvaluation"]
SeverityFloor = Literal["", "minor", "major", "critical"]
OutcomeFloor = Literal["warn", "fail"]
StatusName = Literal["pending", "delivering", "delivered", "failed"]


class IntegrationIn(Schema):
    name: str = Field(..., max_length=1000)
    kind: KindName
    url: str = Field(
        ..., max_length=10_000, description="For Slack and Teams this URL is a secret: it is not shown again."
    )
    events: list[EventName] | None = Field(
        None, description="Defaults to incidentCreated and incidentUpdated."
    )
    headers: dict[str, str] | None = Field(None, description="Webhooks only; values are not shown again.")
    datasetIds: list[Id] | None = Field(None, description="Only events about these datasets; none means all.")
    minSeverity: SeverityFloor | None = Field(
        "", description="Incident events only for incidents at least this severe."
    )
    minOutcome: OutcomeFloor | None = Field(
        "warn", description="checkEvaluation: warn and fail results, or fail only."
    )
    enabled: bool = True


class IntegrationUpdateIn(Schema):
    name: str | None = Field(None, max_length=1000)
    url: str | None = Field(None, max_length=10_000)
    events: list[EventName] | None = None
    headers: dict[str, str] | None = Field(None, description="Replaces every custom header.")
    datasetIds: list[Id] | None = None
    minSeverity: SeverityFloor | None = None
    minOutcome: OutcomeFloor | None = None
    enabled: bool | None = None


class IntegrationOut(Schema):
    id: int
    name: str
    kind: KindName
    url: str = Field(..., description="A hint only: no query string, and no path for Slack and Teams.")
    headerNames: list[str]
    events: list[str]
    datasetIds: list[int]
    minSeverity: str
    minOutcome: str
    enabled: bool
    disabledReason: str
    disabledAt: datetime | None
    signed: bool
    previousSecretExpiresAt: datetime | None
    pendingDeliveries: int
    failedDeliveries: int
    created: datetime
    lastUpdated: datetime


class IntegrationCreatedOut(IntegrationOut):
    secret: str | None = Field(
        None, description="The signing secret (whsec_...), for webhooks; shown in this answer only."
    )


class SecretOut(Schema):
    secret: str
    previousSecretExpiresAt: datetime | None


class DeliveryOut(Schema):
    id: int
    webhookId: str
    event: str
    incidentId: int | None
    incidentNumber: int | None
    status: StatusName
    attempts: int
    nextAttemptAt: datetime | None
    lastStatusCode: int | None
    lastError: str
    created: datetime
    finished: datetime | None
    redeliveryOf: int | None


class AttemptOut(Schema):
    number: int
    started: datetime
    durationMs: int
    statusCode: int | None
    outcome: str
    error: str
    responseExcerpt: str
    nextAttemptAt: datetime | None


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any]
    attemptLog: list[AttemptOut]


class DeliveryQuery(PageParams):
    status: StatusName | None = None


class LinkIn(Schema):
    url: str = Field(..., max_length=10_000)
    text: str = Field("", max_length=10_000)


class ExternalLinkOut(Schema):
    """A link a receiver gave back for an incident (e.g. its Jira ticket), shown on the incident."""

    url: str
    text: str
    integrationType: str
    integrationName: str
    updated: datetime | None


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


@router.get("", response={200: Page[IntegrationOut], **RESPONSES}, summary="List integrations (admins)")
def list_integrations(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    integrations = services.list_integrations(by=caller(request)).prefetch_related("datasets")
    return paginate(integrations, paging.page, paging.size, integration_out)


@router.post("", response={201: IntegrationCreatedOut, **RESPONSES}, summary="Create an integration")
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


@router.get("/{integration_id}", response={200: IntegrationOut, **RESPONSES}, summary="One integration")
def get_integration(request: HttpRequest, integration_id: PathId) -> dict[str, Any]:
    return integration_out([services.get_integration(integration_id, by=caller(request))])[0]


@router.patch(
    "/{integration_id}", response={200: IntegrationOut, **RESPONSES}, summary="Change an integration"
)
def update_integration(
    request: HttpRequest, integration_id: PathId, payload: IntegrationUpdateIn
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
    "/{integration_id}", response={204: None, **RESPONSES}, summary="Delete an integration and its log"
)
def delete_integration(request: HttpRequest, integration_id: PathId) -> Status[None]:
    services.delete_integration(integration_id, by=caller(request))
    return Status(204, None)


@router.post(
    "/{integration_id}/rotateSecret",
    response={200: SecretOut, **RESPONSES},
    summary="New signing secret; the old one signs too for 24 hours",
)
def rotate_secret(request: HttpRequest, integration_id: PathId) -> dict[str, Any]:
    integration, secret = services.rotate_secret(integration_id, by=caller(request))
    return {"secret": secret, "previousSecretExpiresAt": integration.previous_secret_expires_at}


@router.post(
    "/{integration_id}/test", response={202: DeliveryOut, **RESPONSES}, summary="Send a test message"
)
def send_test(request: HttpRequest, integration_id: PathId) -> Status[dict[str, Any]]:
    delivery = services.send_test(integration_id, by=caller(request))
    return Status(
        202, delivery_out([services.get_delivery(integration_id, delivery.pk, by=caller(request))])[0]
    )


@router.get(
    "/{integration_id}/deliveries",
    response={200: Page[DeliveryOut], **RESPONSES},
    summary="The delivery log, newest first",
)
def list_deliveries(
    request: HttpRequest, integration_id: PathId, query: Query[DeliveryQuery]
) -> dict[str, Any]:
    deliveries = services.list_deliveries(integration_id, by=caller(request), status=query.status)
    return paginate(deliveries, query.page, query.size, delivery_out)


@router.get(
    "/{integration_id}/deliveries/{delivery_id}",
    response={200: DeliveryDetailOut, **RESPONSES},
    summary="One delivery with its payload and every attempt",
)
def get_delivery(request: HttpRequest, integration_id: PathId, delivery_id: PathId) -> dict[str, Any]:
    return delivery_detail(services.get_delivery(integration_id, delivery_id, by=caller(request)))


@router.post(
    "/{integration_id}/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut, **RESPONSES},
    summary="Send a delivered or failed event again (same webhook-id)",
)
def redeliver(request: HttpRequest, integration_id: PathId, delivery_id: PathId) -> Status[dict[str, Any]]:
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
