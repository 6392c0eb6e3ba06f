"""What a receiver's answer does: retried with backoff, Retry-After honoured, permanent 4xx, 410 turns off."""

from __future__ import annotations

import pytest
from django.conf import LazySettings

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from quell.integrations.delivery import retry_delay
from quell.integrations.models import Delivery, DeliveryStatus, Integration
from tests.conftest import World
from tests.integrations.conftest import Receiver, Reply, add_webhook, drain


def open_incident(world: World, title: str = "Orders are empty") -> int:
    return incidents.create_incident(
        by=world.editor, title=title, check_result_ids=[world.orders_fail.pk], allow_duplicate=True
    ).pk


def only_delivery() -> Delivery:
    return Delivery.objects.get()


def test_a_failing_receiver_is_retried_until_it_answers(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.script = [Reply(500, b"database down"), Reply(503, b"busy")]
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    requests = receiver.wait_for(3)
    assert len({r.webhook_id for r in requests}) == 1
    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.DELIVERED
    log = list(delivery.attempt_log.values_list("number", "status_code", "outcome", "response_excerpt"))
    assert log == [
        (1, 500, "retrying", "database down"),
        (2, 503, "retrying", "busy"),
        (3, 200, "delivered", "ok"),
    ]


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    fast.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.script = [Reply(200, delay=1.0)]
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.DELIVERED
    first, second = delivery.attempt_log.all()
    assert first.outcome == "retrying"
    assert "No answer within 0.3 s" in first.error
    assert second.outcome == "delivered"


def test_429_with_retry_after_is_not_retried_sooner(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.script = [Reply(429, b"slow down", {"Retry-After": "1"})]
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 1.0
    assert only_delivery().status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502])
def test_these_answers_are_retried(world: World, receiver: Receiver, fast: LazySettings, status: int) -> None:
    receiver.script = [Reply(status)]
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    assert len(receiver.wait_for(2)) == 2
    assert only_delivery().status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_answers_fail_at_once(
    world: World, receiver: Receiver, fast: LazySettings, status: int
) -> None:
    receiver.default = Reply(status, b"no such hook")
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_status_code == status
    assert len(receiver.requests) == 1
    assert Integration.objects.get().enabled


def test_410_turns_the_integration_off_and_tells_admins(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.default = Reply(410, b"gone")
    integration, _ = add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    integration.refresh_from_db()
    assert not integration.enabled
    assert "gone" in integration.disabled_reason
    assert only_delivery().status == DeliveryStatus.FAILED
    assert integrations.turned_off_integrations(by=world.admin) == [integration]
    assert integrations.turned_off_integrations(by=world.editor) == []
    # Later events are not sent to it.
    open_incident(world, "Second")
    assert Delivery.objects.count() == 1


def test_turning_it_on_again_sends_what_was_held(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    integration, _ = add_webhook(world, receiver.url)
    integrations.update_integration(integration.pk, by=world.admin, enabled=False)
    integrations.update_integration(integration.pk, by=world.admin, enabled=True)
    open_incident(world)
    integrations.update_integration(integration.pk, by=world.admin, enabled=False)
    drain(until=lambda: True)
    assert receiver.requests == []

    integrations.update_integration(integration.pk, by=world.admin, enabled=True)
    drain()
    assert len(receiver.wait_for(1)) == 1
    assert only_delivery().status == DeliveryStatus.DELIVERED


def test_a_delivery_gives_up_when_its_retry_window_ends(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    fast.WEBHOOK_RETRY_WINDOW_SECONDS = 0.5
    receiver.default = Reply(503)
    add_webhook(world, receiver.url)
    open_incident(world)
    drain()

    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.FAILED
    assert "Gave up after" in delivery.last_error
    assert delivery.attempts >= 2


def test_backoff_doubles_with_jitter_up_to_the_maximum(settings: LazySettings) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 5
    settings.WEBHOOK_RETRY_MAX_SECONDS = 6 * 3600
    for attempts, nominal in [(1, 5), (2, 10), (5, 80), (30, 6 * 3600)]:
        delays = [retry_delay(attempts) for _ in range(50)]
        assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays)
        assert len(set(delays)) > 1
    assert retry_delay(1, retry_after=120) == 120


def test_the_default_schedule_keeps_trying_for_about_three_days(settings: LazySettings) -> None:
    elapsed, attempts = 0.0, 0
    while elapsed <= settings.WEBHOOK_RETRY_WINDOW_SECONDS:
        attempts += 1
        elapsed += retry_delay(attempts)
    assert settings.WEBHOOK_RETRY_WINDOW_SECONDS == 3 * 24 * 3600
    assert 15 <= attempts <= 30
