"""Integrations, the events they are sent, each delivery of an event to an integration and its attempts."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from quell.catalog.models import Dataset
from quell.incidents.models import Incident


class Kind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack"
    MSTEAMS = "msteams", "Microsoft Teams"


class EventType(models.TextChoices):
    """Soda's event names, which generic webhooks carry as `event`."""

    INCIDENT_CREATED = "incidentCreated", "Incident created"
    INCIDENT_UPDATED = "incidentUpdated", "Incident updated"
    CHECK_EVALUATION = "checkEvaluation", "Check warned or failed"
    VALIDATE = "validate", "Test message"


# What an integration may subscribe to; `validate` is only ever sent on request.
SUBSCRIBABLE_EVENTS = [EventType.INCIDENT_CREATED, EventType.INCIDENT_UPDATED, EventType.CHECK_EVALUATION]

# Standard Webhooks' dotted `type` for each event.
STANDARD_TYPES = {
    EventType.INCIDENT_CREATED: "incident.created",
    EventType.INCIDENT_UPDATED: "incident.updated",
    EventType.CHECK_EVALUATION: "check.evaluation",
    EventType.VALIDATE: "integration.validate",
}

SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
OUTCOME_RANK = {"warn": 0, "fail": 1}


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Integration(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # For Slack and Teams the URL itself is the credential, so it is shown only as a hint.
    url = models.TextField()
    # Extra request headers (webhooks only); values may be credentials and are never shown again.
    headers = models.JSONField(default=dict, blank=True)
    secret = models.CharField(max_length=100, blank=True)
    # During a rotation both secrets sign, so receivers can switch without missing a message.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list, blank=True)
    # Empty means every dataset.
    datasets = models.ManyToManyField(Dataset, related_name="+", blank=True)
    # Incident events only for incidents at least this severe ("" for all).
    min_severity = models.CharField(max_length=10, blank=True)
    # checkEvaluation: "warn" sends warn and fail results, "fail" only failures.
    min_outcome = models.CharField(max_length=10, default="warn")
    enabled = models.BooleanField(default=True)
    # Why Quell turned it off (a 410 from the receiver), shown to admins until they turn it on again.
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets to sign with now: the current one, and the previous one while it lasts."""
        now = now or timezone.now()
        found = [self.secret] if self.secret else []
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            found.append(self.previous_secret)
        return found

    @property
    def url_hint(self) -> str:
        """The URL as it may be shown: no credentials, no query, and for Slack and Teams no path."""
        parts = urlsplit(self.url)
        # Host and port as written (brackets of an IPv6 address, a port of 0 from before ports were
        # checked), without any credentials.
        host = parts.netloc.rpartition("@")[2]
        if self.kind != Kind.WEBHOOK:
            return f"{parts.scheme}://{host}/…"
        return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")

    @property
    def header_names(self) -> list[str]:
        return sorted(self.headers)


class Event(models.Model):
    """Something to tell integrations about, written in the same transaction as the change itself."""

    # The Standard Webhooks `webhook-id`: the same on every attempt and redelivery, so receivers dedupe.
    message_id = models.CharField(max_length=40, unique=True, editable=False)
    type = models.CharField(max_length=20, choices=EventType.choices)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="integration_events"
    )
    # Soda's payload as of the change (without the per-integration callback URL).
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"

    @staticmethod
    def new_message_id() -> str:
        return f"msg_{uuid.uuid4().hex}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERING = "delivering", "Delivering"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)


class Delivery(models.Model):
    """One event on its way to one integration: the unit a worker claims, retries and logs.

    Deliveries of one incident to one integration go out in id order: a worker may only claim the
    oldest unfinished one, so a receiver that is down receives the backlog in order once it is back.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="deliveries")
    # Copied from the event: the ordering key (null for events that belong to no incident).
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    give_up_at = models.DateTimeField()
    # The worker holding the delivery, until lease_until; past it the claim is presumed dead.
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # The last task enqueued for it, so the sweeper can tell whether one is still on its way.
    task_id = models.UUIDField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            # The claim's ordering rule and "next in line": unfinished deliveries of one incident to
            # one integration, oldest first.
            models.Index(fields=["integration", "incident", "status", "id"], name="delivery_in_line"),
            # The sweeper: due pending deliveries and expired claims.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="delivery_unfinished_due",
                condition=Q(status__in=["pending", "delivering"]),
            ),
            # The delivery log of one integration, newest first, optionally by status.
            models.Index(fields=["integration", "status", "-id"], name="delivery_log"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to {self.integration_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in UNFINISHED


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Will retry"
    FAILED = "failed", "Failed"
    # The worker stopped mid-attempt (killed); the receiver may or may not have got it.
    LOST = "lost", "Worker lost"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("delivery", "number", "id")

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class IncidentLink(models.Model):
    """What a receiver linked an incident to (a Jira ticket, ...), and the secret URL it may post it to."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="integration_links")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="incident_links")
    # The capability in incidentLinkCallbackUrl; re-sent in every event, so it is kept as is.
    token = models.CharField(max_length=64, unique=True)
    url = models.CharField(max_length=2000, blank=True)
    text = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["incident", "integration"], name="incident_link_once"),
        ]

    def __str__(self) -> str:
        return f"link of incident {self.incident_id} from integration {self.integration_id}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @classmethod
    def for_pair(cls, incident_id: int, integration_id: int) -> IncidentLink:
        """The link row of this incident and integration, made with a fresh token the first time."""
        link = cls.objects.filter(incident_id=incident_id, integration_id=integration_id).first()
        if link is not None:
            return link
        try:
            with transaction.atomic():
                return cls.objects.create(
                    incident_id=incident_id, integration_id=integration_id, token=cls.new_token()
                )
        except IntegrityError:
            # Another worker made it first.
            return cls.objects.get(incident_id=incident_id, integration_id=integration_id)

    @property
    def callback_url(self) -> str:
        return f"{settings.BASE_URL}/api/v1/integrations/incident-links/{self.token}"
