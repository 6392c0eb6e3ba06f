"""Delivering events: claim, send, record the attempt, retry or move on; and the sweeper that recovers.

The Delivery row is the truth; django-tasks-db's tasks only wake a worker up. A worker claims a
delivery with one conditional UPDATE (pending, due, integration on, nothing older for the same incident
and integration unfinished), so two workers never send the same delivery at once and one incident's
events reach each integration in order. django-tasks-db neither retries nor notices a worker that
died, so this module does both: a failed attempt is rescheduled with backoff as a new task, and the
sweeper (run by `quell worker`) releases claims whose lease ran out and re-enqueues due deliveries
that have no live task.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from quell.integrations.models import (
    UNFINISHED,
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    IncidentLink,
    Integration,
)
from quell.integrations.transport import Sent, TransportError
from quell.integrations.transports import transport_for
from quell.lib import metrics
from quell.lib.logs import task_kwargs

logger = logging.getLogger(__name__)

LOST_ATTEMPT = (
    "The worker stopped during this attempt (killed or crashed). The receiver may have got the message; "
    "it is sent again with the same webhook-id."
)

_worker_id: tuple[int, str] | None = None


def worker_id() -> str:
    """This process's name in claims: host, pid and a random tag (pids are reused)."""
    global _worker_id
    if _worker_id is None or _worker_id[0] != os.getpid():
        _worker_id = (os.getpid(), f"{socket.gethostname()[:60]}/{os.getpid()}/{secrets.token_hex(4)}")
    return _worker_id[1]


@task()
def deliver(delivery_id: int, request_id: str = "") -> str:
    """The task: one attempt at one delivery, if it is still due and this worker wins the claim.

    `request_id` is the request that caused the event; quell.lib.logs puts it on the task's log lines.
    """
    return attempt(delivery_id)


def enqueue(delivery_id: int, run_after: datetime | None = None) -> None:
    """Queue a task for the delivery (inside the caller's transaction, so it commits with it)."""
    queued = deliver.using(run_after=run_after) if run_after is not None else deliver
    result = queued.enqueue(delivery_id, **task_kwargs())
    Delivery.objects.filter(pk=delivery_id).update(task_id=result.id)


def enqueue_new(deliveries: list[Delivery]) -> None:
    """`enqueue` for deliveries just created: one task each, their ids noted in one UPDATE."""
    for delivery in deliveries:
        delivery.task_id = deliver.enqueue(delivery.pk, **task_kwargs()).id
    Delivery.objects.bulk_update(deliveries, ["task_id"])


def _enabled_integration() -> Exists:
    return Exists(Integration.objects.filter(pk=OuterRef("integration_id"), enabled=True))


def _older_unfinished() -> Exists:
    # NULL incident_id never equals anything, so events of no incident are never held back.
    return Exists(
        Delivery.objects.filter(
            integration_id=OuterRef("integration_id"),
            incident_id=OuterRef("incident_id"),
            status__in=UNFINISHED,
            id__lt=OuterRef("id"),
        )
    )


def claimable(now: datetime) -> QuerySet[Delivery]:
    return (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(_enabled_integration())
        .exclude(_older_unfinished())
    )


def claim(delivery_id: int, me: str, now: datetime) -> bool:
    lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    # One UPDATE whose WHERE re-checks `status` on the row it locks: of two workers, one wins.
    return bool(
        claimable(now)
        .filter(pk=delivery_id)
        .update(
            status=DeliveryStatus.DELIVERING,
            claimed_by=me,
            lease_until=lease_until,
            attempts=F("attempts") + 1,
        )
    )


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter after `attempts` failures, never sooner than Retry-After."""
    base, cap = settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    # Jitter spreads out the retries of many deliveries that failed together (a receiver outage).
    delay *= random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def attempt(delivery_id: int) -> str:
    me = worker_id()
    if not claim(delivery_id, me, timezone.now()):
        return "not claimed"
    delivery = Delivery.objects.select_related("event", "integration").get(pk=delivery_id)
    started_at = timezone.now()
    clock = time.monotonic()
    result: Sent | TransportError
    try:
        result = transport_for(delivery.integration).notify(delivery.event, delivery)
    except TransportError as error:
        result = error
    except Exception as error:
        # A bug must not leave the delivery claimed until its lease runs out, again and again.
        logger.exception("Delivery %s failed inside Quell", delivery_id)
        result = TransportError(
            f"Quell could not build or send the request ({type(error).__name__}).", permanent=True
        )
    duration_ms = int((time.monotonic() - clock) * 1000)
    return finish(delivery, me, started_at, duration_ms, result)


def finish(
    delivery: Delivery, me: str, started_at: datetime, duration_ms: int, result: Sent | TransportError
) -> str:
    now = timezone.now()
    mine = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERING, claimed_by=me)
    next_attempt_at: datetime | None = None
    status_code: int | None
    if isinstance(result, Sent):
        outcome = AttemptOutcome.DELIVERED
        status_code, error, excerpt = result.status_code, "", result.excerpt
    else:
        status_code, error, excerpt = result.status_code, result.message, result.excerpt
        outcome = AttemptOutcome.FAILED
        if not result.permanent:
            next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts, result.retry_after))
            if next_attempt_at <= delivery.give_up_at:
                outcome = AttemptOutcome.RETRYING
            else:
                next_attempt_at = None
                error += f" Gave up after {delivery.attempts} attempts."
    with transaction.atomic():
        # Locked, so an admin deleting the integration meanwhile waits for this attempt to be logged.
        if not Delivery.objects.select_for_update().filter(pk=delivery.pk).exists():
            return "deleted meanwhile"
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            outcome=outcome,
            error=error,
            response_excerpt=excerpt,
            worker=me,
            next_attempt_at=next_attempt_at,
        )
        # Counted once the attempt is on record; "disabled" is a failure that turned the integration off.
        counted = "disabled" if isinstance(result, TransportError) and result.disable else outcome.value
        transaction.on_commit(partial(metrics.count_delivery_attempt, delivery.integration.kind, counted))
        common = {"last_status_code": status_code, "last_error": error, "claimed_by": "", "lease_until": None}
        if outcome == AttemptOutcome.RETRYING:
            assert next_attempt_at is not None
            if mine.update(status=DeliveryStatus.PENDING, next_attempt_at=next_attempt_at, **common):
                enqueue(delivery.pk, run_after=next_attempt_at)
            return f"retry at {next_attempt_at.isoformat()}"
        status = DeliveryStatus.DELIVERED if outcome == AttemptOutcome.DELIVERED else DeliveryStatus.FAILED
        if not mine.update(status=status, finished_at=now, **common):
            # The lease ran out and the sweeper handed the delivery on; that attempt decides.
            return f"{outcome}, but the claim had expired"
        if isinstance(result, Sent) and result.link and delivery.incident_id is not None:
            url, text = result.link
            IncidentLink.for_pair(delivery.incident_id, delivery.integration_id)
            IncidentLink.objects.filter(
                incident_id=delivery.incident_id, integration_id=delivery.integration_id
            ).update(url=url, text=text, updated_at=now)
        if isinstance(result, TransportError) and result.disable:
            disable(delivery.integration_id, result.message, now)
        enqueue_next_in_line(delivery)
    return str(outcome)


def disable(integration_id: int, reason: str, now: datetime) -> None:
    """Turn an integration off because its receiver said so; admins see the reason on its page."""
    updated = Integration.objects.filter(pk=integration_id, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    if updated:
        logger.warning("Integration %s was turned off: %s", integration_id, reason)


def enqueue_next_in_line(delivery: Delivery) -> None:
    """Wake the delivery that waited behind this one (same incident, same integration)."""
    if delivery.incident_id is None:
        return
    following = (
        Delivery.objects.filter(
            integration_id=delivery.integration_id,
            incident_id=delivery.incident_id,
            status=DeliveryStatus.PENDING,
            id__gt=delivery.pk,
        )
        .order_by("id")
        .first()
    )
    if following is not None:
        due = following.next_attempt_at
        enqueue(following.pk, run_after=due if due > timezone.now() else None)


# --- Recovery ---------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    released: int = 0
    reaped_tasks: int = 0
    enqueued: int = 0


SWEEP_BATCH = 500


def release_expired_claims(now: datetime) -> int:
    """Deliveries claimed by a worker whose lease ran out (it died mid-attempt) become due again."""
    released = 0
    expired = Delivery.objects.filter(status=DeliveryStatus.DELIVERING, lease_until__lt=now)
    fields = ("id", "attempts", "claimed_by", "lease_until", "integration__kind")
    for delivery in expired.select_related("integration").only(*fields)[:SWEEP_BATCH]:
        with transaction.atomic():
            if not Delivery.objects.filter(
                pk=delivery.pk, status=DeliveryStatus.DELIVERING, lease_until__lt=now
            ).update(
                status=DeliveryStatus.PENDING,
                claimed_by="",
                lease_until=None,
                next_attempt_at=now,
                last_error=LOST_ATTEMPT,
            ):
                continue
            assert delivery.lease_until is not None
            DeliveryAttempt.objects.create(
                delivery=delivery,
                number=delivery.attempts,
                started_at=delivery.lease_until - timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
                outcome=AttemptOutcome.LOST,
                error=LOST_ATTEMPT,
                worker=delivery.claimed_by,
            )
            lost = partial(
                metrics.count_delivery_attempt, delivery.integration.kind, AttemptOutcome.LOST.value
            )
            transaction.on_commit(lost)
            released += 1
    return released


def reap_dead_tasks(now: datetime) -> int:
    """Mark delivery tasks that have been 'running' longer than any attempt can take as failed.

    django-tasks-db leaves the task of a killed worker RUNNING forever; its delivery is recovered by
    release_expired_claims, and this keeps the task table telling the truth.
    """
    cutoff = now - timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    return DBTaskResult.objects.filter(
        status="RUNNING", task_path=deliver.module_path, started_at__lt=cutoff
    ).update(
        status="FAILED",
        finished_at=now,
        exception_class_path="quell.integrations.delivery.WorkerLost",
        traceback="The worker running this task stopped (killed or crashed); its delivery was handed on.",
    )


def enqueue_orphans(now: datetime, integration_id: int | None = None) -> int:
    """Queue a task for each due delivery that no live task will pick up."""
    live_task = DBTaskResult.objects.filter(id=OuterRef("task_id"), status__in=["READY", "RUNNING"])
    due = claimable(now).exclude(Exists(live_task))
    if integration_id is not None:
        due = due.filter(integration_id=integration_id)
    count = 0
    for delivery_id in due.order_by("id").values_list("id", flat=True)[:SWEEP_BATCH]:
        with transaction.atomic():
            enqueue(delivery_id)
        count += 1
    return count


def sweep(now: datetime | None = None) -> SweepReport:
    now = now or timezone.now()
    report = SweepReport()
    report.released = release_expired_claims(now)
    report.reaped_tasks = reap_dead_tasks(now)
    report.enqueued = enqueue_orphans(now)
    if report.released or report.reaped_tasks or report.enqueued:
        logger.info(
            "Sweep: %s expired claims released, %s dead tasks closed, %s deliveries queued again",
            report.released,
            report.reaped_tasks,
            report.enqueued,
        )
    return report
