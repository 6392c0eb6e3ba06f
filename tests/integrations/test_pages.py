"""The integrations settings pages: admins manage everything there; everyone else is refused."""

from __future__ import annotations

import re

import pytest
from django.conf import LazySettings
from django.test import Client

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from quell.integrations.models import Delivery, Integration
from tests.conftest import World
from tests.integrations.conftest import Receiver, Reply, add_webhook, drain

NON_ADMINS = ["manager", "editor", "viewer", "outsider"]


def signed_in(world: World, name: str) -> Client:
    client = Client()
    client.force_login(world.user(name))
    return client


def pages(integration_id: int, delivery_id: int) -> list[str]:
    base = f"/settings/integrations/{integration_id}"
    return [
        "/settings/integrations/",
        "/settings/integrations/new",
        base,
        f"{base}/deliveries",
        f"{base}/deliveries/{delivery_id}",
    ]


@pytest.fixture
def hook(world: World, receiver: Receiver, fast: LazySettings) -> tuple[int, int]:
    integration, _ = add_webhook(world, receiver.url)
    sent = integrations.send_test(integration.pk, by=world.admin)
    drain()
    return integration.pk, sent.pk


@pytest.mark.parametrize("user", NON_ADMINS)
def test_people_who_are_not_admins_are_refused_every_page_and_action(
    world: World, hook: tuple[int, int], user: str
) -> None:
    client = signed_in(world, user)
    for url in pages(*hook):
        assert client.get(url).status_code == 403, url
    integration_id, delivery_id = hook
    for action in ("test", "rotate", "disable", "delete"):
        assert (
            client.post(f"/settings/integrations/{integration_id}/action", {"action": action}).status_code
            == 403
        )
    assert client.post(f"/settings/integrations/{integration_id}/deliveries/{delivery_id}").status_code == 403
    assert (
        client.post(
            "/settings/integrations/new", {"kind": "webhook", "name": "X", "url": "https://e.com/"}
        ).status_code
        == 403
    )
    assert Integration.objects.get().enabled
    assert Delivery.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in(world: World, hook: tuple[int, int]) -> None:
    for url in pages(*hook):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_an_admin_sees_each_page(world: World, hook: tuple[int, int]) -> None:
    client = signed_in(world, "admin")
    for url in pages(*hook):
        assert client.get(url).status_code == 200, url


def test_creating_a_webhook_shows_its_secret_once(world: World, fast: LazySettings) -> None:
    client = signed_in(world, "admin")
    response = client.post(
        "/settings/integrations/new",
        {
            "kind": "webhook",
            "name": "Jira",
            "url": "http://127.0.0.1:9/automation",
            "events": ["incidentCreated", "checkEvaluation"],
            "datasets": [str(world.orders.pk)],
            "min_severity": "major",
            "min_outcome": "fail",
            "headers": "X-Automation-Webhook-Token: s3cret-token",
        },
    )
    assert response.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', response.content.decode())
    assert secret is not None
    integration = Integration.objects.get()
    assert integration.secret == secret.group(1)
    assert integration.events == ["incidentCreated", "checkEvaluation"]
    assert integration.headers == {"X-Automation-Webhook-Token": "s3cret-token"}
    assert list(integration.datasets.all()) == [world.orders]
    detail = client.get(f"/settings/integrations/{integration.pk}").content.decode()
    assert secret.group(1) not in detail
    assert "s3cret-token" not in detail
    assert "X-Automation-Webhook-Token" in detail


def test_a_refused_url_is_shown_next_to_the_field(world: World) -> None:
    response = signed_in(world, "admin").post(
        "/settings/integrations/new",
        {"kind": "webhook", "name": "Inside", "url": "http://10.0.0.8/hook", "min_outcome": "warn"},
    )
    assert response.status_code == 400
    assert re.search(
        r'class="field-error"[^>]*>[^<]*10\.0\.0\.8 is a private address', response.content.decode()
    )
    assert not Integration.objects.exists()


def test_editing_keeps_the_url_and_headers_when_left_empty(world: World, fast: LazySettings) -> None:
    integration, _ = add_webhook(world, "http://127.0.0.1:9/hook", headers={"X-Token": "abc"})
    response = signed_in(world, "admin").post(
        f"/settings/integrations/{integration.pk}",
        {
            "name": "Renamed",
            "url": "",
            "events": ["incidentUpdated"],
            "min_severity": "",
            "min_outcome": "warn",
            "headers": "",
        },
    )
    assert response.status_code == 302
    integration.refresh_from_db()
    assert (integration.name, integration.url, integration.headers) == (
        "Renamed",
        "http://127.0.0.1:9/hook",
        {"X-Token": "abc"},
    )
    assert integration.events == ["incidentUpdated"]


def test_send_test_and_redeliver_from_the_pages(world: World, receiver: Receiver, fast: LazySettings) -> None:
    integration, _ = add_webhook(world, receiver.url)
    client = signed_in(world, "admin")
    assert (
        client.post(f"/settings/integrations/{integration.pk}/action", {"action": "test"}).status_code == 302
    )
    drain()
    delivery = Delivery.objects.get()
    page = client.get(f"/settings/integrations/{integration.pk}/deliveries/{delivery.pk}").content.decode()
    assert delivery.event.message_id in page
    assert "Delivered" in page

    again = client.post(f"/settings/integrations/{integration.pk}/deliveries/{delivery.pk}")
    assert again.status_code == 302
    drain()
    first, second = receiver.wait_for(2)
    assert first.webhook_id == second.webhook_id


def test_the_list_shows_counts_and_tells_admins_what_was_turned_off(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.default = Reply(410, b"gone")
    integration, _ = add_webhook(world, receiver.url, name="Old Jira")
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    page = signed_in(world, "admin").get("/settings/integrations/").content.decode()
    assert "Old Jira was turned off" in page
    integration = integrations.get_integration(integration.pk, by=world.admin)
    assert (integration.pending_count, integration.failed_count) == (0, 1)  # type: ignore[attr-defined]
