"""The sweeper: a claim whose worker died is handed on, and a due delivery without a task is queued again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import LazySettings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from quell.incidents import services as incidents
from quell.integrations.delivery import claim, sweep
from quell.integrations.models import Delivery, DeliveryStatus
from tests.conftest import World
from tests.integrations.conftest import Receiver, add_webhook, drain


def test_a_claim_whose_worker_died_is_handed_on_and_logged(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    delivery = Delivery.objects.get()
    # A worker claimed it and started its task a lease ago, then was killed: nothing else happened.
    then = timezone.now() - timedelta(seconds=fast.WEBHOOK_LEASE_SECONDS + 1)
    Delivery.objects.update(next_attempt_at=then)
    assert claim(delivery.pk, "dead-worker", then)
    DBTaskResult.objects.update(status="RUNNING", started_at=then)
    assert sweep(then + timedelta(seconds=5)).released == 0

    report = sweep()
    assert (report.released, report.reaped_tasks, report.enqueued) == (1, 1, 1)
    drain()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [a.outcome for a in delivery.attempt_log.all()] == ["lost", "delivered"]
    assert len(receiver.requests) == 1


def test_a_second_claim_of_the_same_delivery_is_refused(world: World, fast: LazySettings) -> None:
    add_webhook(world, "http://127.0.0.1:9/")
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    delivery = Delivery.objects.get()
    now = timezone.now()
    assert claim(delivery.pk, "first", now)
    assert not claim(delivery.pk, "second", now)
    assert Delivery.objects.get().claimed_by == "first"


def test_a_due_delivery_whose_task_was_lost_is_queued_again(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    DBTaskResult.objects.all().delete()

    assert sweep().enqueued == 1
    assert sweep().enqueued == 0
    drain()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(receiver.wait_for(1)) == 1


def test_a_later_event_of_the_same_incident_waits_for_the_earlier_one(
    world: World, fast: LazySettings
) -> None:
    add_webhook(world, "http://127.0.0.1:9/")
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    incidents.update_incident(incident.pk, by=world.editor, status="fixing")
    first, second = Delivery.objects.order_by("id")
    now = timezone.now()
    assert not claim(second.pk, "worker", now)
    assert claim(first.pk, "worker", now)
    assert not claim(second.pk, "other", now)
