"""Receivers link an incident to their ticket: in their answer, or later through the callback URL."""

from __future__ import annotations

import httpx
import pytest
from django.conf import LazySettings

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from quell.lib.errors import NotFound
from tests.conftest import ClientFor, World
from tests.integrations.conftest import Receiver, Reply, add_webhook, drain


def test_a_link_in_the_receivers_answer_appears_on_the_incident(
    client_for: ClientFor, world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.default = Reply(
        200, b'{"link": {"url": "https://jira.example.com/browse/DQ-7", "text": "DQ-7"}}'
    )
    add_webhook(world, receiver.url, name="Jira")
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    shown = client_for("viewer").get(f"/incidents/{incident.pk}").json()
    assert shown["links"] == [
        {
            "url": "https://jira.example.com/browse/DQ-7",
            "text": "DQ-7",
            "integrationType": "webhook",
            "integrationName": "Jira",
            "updated": shown["links"][0]["updated"],
        }
    ]
    # Later events carry it in Soda's `links`.
    incidents.update_incident(incident.pk, by=world.editor, status="fixing")
    drain()
    later = receiver.wait_for(2)[1].json()
    assert later["incident"]["links"] == [
        {"integrationType": "webhook", "name": "DQ-7", "url": "https://jira.example.com/browse/DQ-7"}
    ]


def test_a_receiver_may_post_the_link_later_to_the_callback_url(
    live_server: object, world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    drain()
    callback = receiver.wait_for(1)[0].json()["incidentLinkCallbackUrl"]
    # Quell's BASE_URL is not this test server's address; the path is what counts.
    path = callback.split("://", 1)[1].split("/", 1)[1]
    url = f"{live_server.url}/{path}"  # type: ignore[attr-defined]

    posted = httpx.post(url, json={"url": "https://tickets.example.com/42", "text": "Ticket 42"})
    assert posted.status_code == 200, posted.text
    assert (
        integrations.incident_links(incident.pk, by=world.viewer)[0]["url"]
        == "https://tickets.example.com/42"
    )
    refused = httpx.post(url, json={"url": "javascript:alert(1)"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_url"
    unknown = httpx.post(url[:-4] + "zzzz", json={"url": "https://x.example.com/"})
    assert unknown.status_code == 404


def test_links_are_only_shown_to_who_can_see_the_incident(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    receiver.default = Reply(
        200, b'{"link": {"url": "https://jira.example.com/browse/DQ-7", "text": "DQ-7"}}'
    )
    add_webhook(world, receiver.url)
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    assert len(integrations.incident_links(incident.pk, by=world.viewer)) == 1
    with pytest.raises(NotFound):
        integrations.incident_links(incident.pk, by=world.outsider)


def test_a_link_that_is_not_http_is_ignored(world: World, receiver: Receiver, fast: LazySettings) -> None:
    receiver.default = Reply(200, b'{"link": {"url": "javascript:alert(1)", "text": "x"}}')
    add_webhook(world, receiver.url)
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    drain()
    assert integrations.incident_links(incident.pk, by=world.admin) == []
