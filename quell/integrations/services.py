"""Domain operations on integrations. The API, the settings pages and the link-back endpoint call these.

Only admins manage integrations. Secrets (the signing secret, Slack and Teams URLs, header values) are
returned once, when they are made, and never shown or logged afterwards.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from quell.accounts.models import User
from quell.accounts.permissions import require_admin
from quell.catalog.models import Dataset
from quell.incidents.models import Incident
from quell.integrations import delivery as worker
from quell.integrations import events
from quell.integrations.models import (
    OUTCOME_RANK,
    SEVERITY_RANK,
    SUBSCRIBABLE_EVENTS,
    UNFINISHED,
    Delivery,
    DeliveryStatus,
    IncidentLink,
    Integration,
    Kind,
    new_signing_secret,
)
from quell.integrations.netguard import url_refusal
from quell.integrations.transport import header_problem
from quell.lib.errors import Invalid, NotFound, Unprocessable
from quell.lib.text import require_plain_text

ACTION = "manage integrations"
NAME_MAX = 200
URL_MAX = 2000
MAX_HEADERS = 20
HEADER_VALUE_MAX = 2000
HEADER_NAME_MAX = 100
# Headers Quell sets itself or HTTP owns; a custom one may not replace them.
RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent"}
DEFAULT_EVENTS = ["incidentCreated", "incidentUpdated"]
ROTATION_OVERLAP = timedelta(hours=24)
LINK_TEXT_MAX = 200


# --- Reading --------------------------------------------------------------------------------------


def _count(rows: QuerySet[Delivery]) -> Coalesce:
    grouped = rows.order_by().values("integration").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(grouped, output_field=IntegerField()), Value(0))


def with_counts(integrations: QuerySet[Integration]) -> QuerySet[Integration]:
    """Annotate pending_count (on their way) and failed_count (failed and not redelivered since)."""
    mine = Delivery.objects.filter(integration=OuterRef("pk"))
    redelivered = Delivery.objects.filter(redelivery_of=OuterRef("pk"))
    return integrations.annotate(
        pending_count=_count(mine.filter(status__in=UNFINISHED)),
        failed_count=_count(mine.filter(status=DeliveryStatus.FAILED).exclude(Exists(redelivered))),
    )


def list_integrations(*, by: User) -> QuerySet[Integration]:
    require_admin(by, ACTION)
    return with_counts(Integration.objects.all()).order_by("name", "id")


def get_integration(integration_id: int, *, by: User) -> Integration:
    require_admin(by, ACTION)
    integration = (
        with_counts(Integration.objects.filter(pk=integration_id)).prefetch_related("datasets").first()
    )
    if integration is None:
        raise NotFound(f"Integration {integration_id} not found.")
    return integration


def turned_off_integrations(*, by: User) -> list[Integration]:
    """Integrations Quell turned off because their receiver answered 410: what admins must be told."""
    if not by.is_admin:
        return []
    return list(Integration.objects.filter(enabled=False).exclude(disabled_reason="").order_by("name", "id"))


def list_deliveries(integration_id: int, *, by: User, status: str | None = None) -> QuerySet[Delivery]:
    integration = get_integration(integration_id, by=by)
    deliveries = integration.deliveries.select_related("event", "incident")
    if status:
        if status not in DeliveryStatus.values:
            raise Invalid(f"status must be one of {', '.join(DeliveryStatus.values)}.", field="status")
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-id")


def get_delivery(integration_id: int, delivery_id: int, *, by: User) -> Delivery:
    require_admin(by, ACTION)
    found = (
        Delivery.objects.filter(pk=delivery_id, integration_id=integration_id)
        .select_related("event", "integration", "incident", "requested_by")
        .prefetch_related("attempt_log")
        .first()
    )
    if found is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    return found


# --- Writing --------------------------------------------------------------------------------------


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("An integration needs a name.", code="name_required", field="name")
    if len(name) > NAME_MAX:
        raise Invalid(f"The name is longer than {NAME_MAX} characters.", code="too_long", field="name")
    return require_plain_text(name, "name", label="The name")


def _clean_url(url: str | None) -> str:
    """The URL exactly as given, once delivery could send to it (netguard.url_refusal decides)."""
    url = url or ""
    if len(url) > URL_MAX or any(ch.isspace() for ch in url):
        raise Invalid(
            f"The URL must be at most {URL_MAX} characters, without spaces.", code="invalid_url", field="url"
        )
    if not url.lower().startswith(("http://", "https://")):
        raise Invalid("The URL must start with https:// (or http://).", code="invalid_url", field="url")
    # What follows is more than the API's schema states of a URL (its shape, length and no spaces):
    # the host's forms and the installation's network policy. So it is an Unprocessable (a 400 with a rule's code).
    refusal = url_refusal(url)
    if refusal:
        raise Unprocessable(refusal.message, code=refusal.code, field="url")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise Unprocessable("Put credentials in a header, not in the URL.", code="invalid_url", field="url")
    return url


def _clean_events(chosen: list[str] | None) -> list[str]:
    chosen = list(DEFAULT_EVENTS if chosen is None else chosen)
    unknown = sorted(set(chosen) - set(SUBSCRIBABLE_EVENTS))
    if unknown:
        allowed = ", ".join(SUBSCRIBABLE_EVENTS)
        raise Invalid(
            f"Unknown events: {', '.join(unknown)}. Choose from {allowed}.",
            code="invalid_events",
            field="events",
        )
    return [name for name in SUBSCRIBABLE_EVENTS if name in chosen]


def _clean_headers(kind: str, headers: dict[str, Any] | None, *, stored_kind: bool = False) -> dict[str, str]:
    """`stored_kind`: `kind` is the integration's, not the request's (a change), so a request alone
    cannot show that it gives headers to a webhook: that refusal is then an Unprocessable."""
    headers = headers or {}
    if headers and kind != Kind.WEBHOOK:
        refusal = Unprocessable if stored_kind else Invalid
        raise refusal("Only webhooks send custom headers.", code="invalid_headers", field="headers")
    if len(headers) > MAX_HEADERS:
        raise Invalid(f"At most {MAX_HEADERS} headers.", code="invalid_headers", field="headers")
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or len(name) > HEADER_NAME_MAX:
            raise Invalid(
                f"A header name is text of at most {HEADER_NAME_MAX} characters.",
                code="invalid_headers",
                field="headers",
            )
        if not isinstance(value, str) or len(value) > HEADER_VALUE_MAX:
            raise Invalid(
                f"The value of {name} must be text of at most {HEADER_VALUE_MAX} characters.",
                code="invalid_headers",
                field="headers",
            )
        # Stored as given, so only what HTTP can carry exactly as it is.
        problem = header_problem(name, value)
        if problem:
            raise Invalid(problem, code="invalid_headers", field="headers")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise Invalid(f"Quell sets {name} itself.", code="invalid_headers", field="headers")
        if lowered in {existing.lower() for existing in cleaned}:
            # Names that differ only in case: JSON Schema cannot compare an object's names that way.
            raise Unprocessable(f"The header {name} is given twice.", code="invalid_headers", field="headers")
        cleaned[name] = value
    return cleaned


def _clean_datasets(dataset_ids: list[int] | None) -> list[Dataset]:
    ids = list(dict.fromkeys(dataset_ids or []))
    found = Dataset.objects.in_bulk(ids)
    missing = [str(dataset_id) for dataset_id in ids if dataset_id not in found]
    if missing:
        raise Unprocessable(
            f"Unknown dataset ids: {', '.join(missing)}.", code="unknown_datasets", field="datasetIds"
        )
    return [found[dataset_id] for dataset_id in ids]


def _clean_min_severity(value: str | None) -> str:
    value = value or ""
    if value and value not in SEVERITY_RANK:
        raise Invalid(f"minSeverity must be one of {', '.join(SEVERITY_RANK)}.", field="minSeverity")
    return value


def _clean_min_outcome(value: str | None) -> str:
    value = value or "warn"
    if value not in OUTCOME_RANK:
        raise Invalid("minOutcome must be warn or fail.", field="minOutcome")
    return value


def create_integration(
    *,
    by: User,
    name: str,
    kind: str,
    url: str,
    events: list[str] | None = None,
    headers: dict[str, Any] | None = None,
    dataset_ids: list[int] | None = None,
    min_severity: str | None = "",
    min_outcome: str | None = "warn",
    enabled: bool = True,
) -> tuple[Integration, str | None]:
    """Create an integration; a webhook's signing secret is returned here and never again."""
    require_admin(by, ACTION)
    if kind not in Kind.values:
        raise Invalid(f"kind must be one of {', '.join(Kind.values)}.", code="invalid_kind", field="kind")
    name = _clean_name(name)
    url = _clean_url(url)
    chosen = _clean_events(events)
    cleaned_headers = _clean_headers(kind, headers)
    datasets = _clean_datasets(dataset_ids)
    secret = new_signing_secret() if kind == Kind.WEBHOOK else None
    with transaction.atomic():
        integration = Integration.objects.create(
            name=name,
            kind=kind,
            url=url,
            headers=cleaned_headers,
            secret=secret or "",
            events=chosen,
            min_severity=_clean_min_severity(min_severity),
            min_outcome=_clean_min_outcome(min_outcome),
            enabled=enabled,
            created_by=by,
        )
        integration.datasets.set(datasets)
    return get_integration(integration.pk, by=by), secret


def update_integration(
    integration_id: int,
    *,
    by: User,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    headers: dict[str, Any] | None = None,
    dataset_ids: list[int] | None = None,
    min_severity: str | None = None,
    min_outcome: str | None = None,
    enabled: bool | None = None,
) -> Integration:
    """Change what is given (None leaves a field as it is). `headers` replaces all custom headers."""
    require_admin(by, ACTION)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
        if integration is None:
            raise NotFound(f"Integration {integration_id} not found.")
        if name is not None:
            integration.name = _clean_name(name)
        if url is not None:
            integration.url = _clean_url(url)
        if events is not None:
            integration.events = _clean_events(events)
        if headers is not None:
            integration.headers = _clean_headers(integration.kind, headers, stored_kind=True)
        if min_severity is not None:
            integration.min_severity = _clean_min_severity(min_severity)
        if min_outcome is not None:
            integration.min_outcome = _clean_min_outcome(min_outcome)
        if dataset_ids is not None:
            integration.datasets.set(_clean_datasets(dataset_ids))
        turned_on = enabled is True and not integration.enabled
        if enabled is not None:
            integration.enabled = enabled
        if turned_on:
            _resume(integration)
        integration.updated_at = timezone.now()
        integration.save()
    return get_integration(integration.pk, by=by)


def _resume(integration: Integration) -> None:
    """Deliveries held while the integration was off get a fresh retry window and go out now."""
    now = timezone.now()
    integration.disabled_reason = ""
    integration.disabled_at = None
    give_up_at = now + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)
    integration.deliveries.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=now, give_up_at=give_up_at
    )
    transaction.on_commit(lambda: worker.enqueue_orphans(timezone.now(), integration_id=integration.pk))


def delete_integration(integration_id: int, *, by: User) -> None:
    require_admin(by, ACTION)
    deleted, _ = Integration.objects.filter(pk=integration_id).delete()
    if not deleted:
        raise NotFound(f"Integration {integration_id} not found.")


def rotate_secret(integration_id: int, *, by: User) -> tuple[Integration, str]:
    """A new signing secret, returned once; the old one keeps signing too for ROTATION_OVERLAP."""
    require_admin(by, ACTION)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
        if integration is None:
            raise NotFound(f"Integration {integration_id} not found.")
        if integration.kind != Kind.WEBHOOK:
            raise Unprocessable(
                "Only webhooks are signed; Slack and Teams URLs are their own secret.", code="not_signed"
            )
        secret = new_signing_secret()
        now = timezone.now()
        integration.previous_secret = integration.secret
        integration.previous_secret_expires_at = now + ROTATION_OVERLAP
        integration.secret = secret
        integration.updated_at = now
        integration.save()
    return get_integration(integration.pk, by=by), secret


def send_test(integration_id: int, *, by: User) -> Delivery:
    """Queue a `validate` event for this integration alone."""
    integration = get_integration(integration_id, by=by)
    if not integration.enabled:
        raise Unprocessable(
            "The integration is turned off; turn it on to send a test.", code="integration_off"
        )
    return events.record_validate(integration, by=by)


def redeliver(integration_id: int, delivery_id: int, *, by: User) -> Delivery:
    """Send a finished delivery's event again, with the same webhook-id, as a new delivery."""
    original = get_delivery(integration_id, delivery_id, by=by)
    if not original.is_finished:
        raise Unprocessable("This delivery is still on its way.", code="delivery_unfinished")
    if not original.integration.enabled:
        raise Unprocessable("The integration is turned off; turn it on to redeliver.", code="integration_off")
    now = timezone.now()
    with transaction.atomic():
        copy = Delivery.objects.create(
            event=original.event,
            integration=original.integration,
            incident=original.incident,
            next_attempt_at=now,
            give_up_at=now + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS),
            redelivery_of=original,
            requested_by=by,
            created_at=now,
        )
        worker.enqueue(copy.pk)
    return get_delivery(integration_id, copy.pk, by=by)


# --- Links back from receivers -------------------------------------------------------------------


def set_incident_link(token: str, *, url: str, text: str = "") -> IncidentLink:
    """A receiver's link for an incident (a ticket), posted to its incidentLinkCallbackUrl.

    The token in that URL is the credential: it names one incident and one integration.
    """
    link = IncidentLink.objects.filter(token=token).select_related("incident").first() if token else None
    if link is None:
        raise NotFound("This link-back URL is not known.")
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")) or len(url) > URL_MAX or any(ch.isspace() for ch in url):
        raise Invalid(
            f"url must be an http(s) URL of at most {URL_MAX} characters.", code="invalid_url", field="url"
        )
    text = (text or "").strip()
    if len(text) > LINK_TEXT_MAX:
        raise Invalid(f"text must be at most {LINK_TEXT_MAX} characters.", code="too_long", field="text")
    require_plain_text(text, "text")
    link.url, link.text, link.updated_at = url, text, timezone.now()
    link.save(update_fields=["url", "text", "updated_at"])
    return link


def links_for_incidents(incidents: list[Incident]) -> dict[int, list[IncidentLink]]:
    """External links of incidents the caller has already been allowed to see, in one query."""
    found: dict[int, list[IncidentLink]] = {incident.pk: [] for incident in incidents}
    # Most incidents have no links: a query without the join and its ordering costs half as much to
    # build (every API answer about incidents asks), and integrations are read only for links found.
    rows = list(IncidentLink.objects.filter(incident_id__in=found).exclude(url=""))
    if rows:
        integrations = Integration.objects.in_bulk({link.integration_id for link in rows})
        for link in rows:
            link.integration = integrations[link.integration_id]
        rows.sort(key=lambda link: (link.integration.name, link.pk))
    for link in rows:
        found[link.incident_id].append(link)
    return found


def link_out(link: IncidentLink) -> dict[str, Any]:
    return {
        "url": link.url,
        "text": link.text or link.integration.name,
        "integrationType": link.integration.kind,
        "integrationName": link.integration.name,
        "updated": link.updated_at,
    }


def incident_links(incident: Incident | int, *, by: User) -> list[dict[str, Any]]:
    """The links shown on an incident, for anyone who can see it."""
    from quell.incidents.queries import checked_incident

    incident = checked_incident(incident, by=by)
    return [link_out(link) for link in links_for_incidents([incident])[incident.pk]]
