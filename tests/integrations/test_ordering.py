"""A receiver that was down gets every event, in order per incident, once it is back."""

from __future__ import annotations

import time

from django.conf import LazySettings

from quell.incidents import services as incidents
from quell.integrations.models import Delivery, DeliveryStatus
from tests.conftest import World
from tests.integrations.conftest import Received, Receiver, Reply, add_webhook, drain


def test_a_receiver_that_was_down_gets_everything_in_order_once_back(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    back_at = time.monotonic() + 1.0

    def answer(request: Received) -> Reply:
        return Reply(503, b"maintenance") if time.monotonic() < back_at else Reply(200)

    receiver.answer = answer
    add_webhook(world, receiver.url)
    first = incidents.create_incident(by=world.editor, title="First", check_result_ids=[world.orders_fail.pk])
    second = incidents.create_incident(
        by=world.admin, title="Second", check_result_ids=[world.customers_fail.pk]
    )
    for status in ("investigating", "fixing"):
        incidents.update_incident(first.pk, by=world.editor, status=status)
        incidents.update_incident(second.pk, by=world.admin, status=status)
    incidents.update_incident(first.pk, by=world.editor, status="resolved", resolution_notes="Reloaded")
    drain(lambda: not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists())

    delivered = [r for r in receiver.requests if r.at >= back_at]
    statuses: dict[int, list[str]] = {}
    for request in delivered:
        body = request.json()
        statuses.setdefault(body["incident"]["number"], []).append(body["incident"]["status"])
    assert statuses == {
        first.number: ["reported", "investigating", "fixing", "resolved"],
        second.number: ["reported", "investigating", "fixing"],
    }
    # While it was down only the oldest event of each incident was tried; the rest waited their turn.
    tried_while_down = {r.json()["incident"]["status"] for r in receiver.requests if r.at < back_at}
    assert tried_while_down == {"reported"}
    assert len({r.webhook_id for r in delivered}) == 7
