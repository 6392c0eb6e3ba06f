"""Slack gets valid Block Kit and Teams gets a valid Adaptive Card, for every kind of event."""

from __future__ import annotations

import logging
from typing import Any

import jsonschema_rs
import pytest
from django.conf import LazySettings

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from tests.conftest import World, push
from tests.integrations.conftest import Receiver, add_webhook, drain
from tests.integrations.schemas import ADAPTIVE_CARD_MESSAGE, BLOCK_KIT_MESSAGE

ALL_EVENTS = ["incidentCreated", "incidentUpdated", "checkEvaluation"]


def make_every_event(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor,
        title="Orders <b>empty</b> & late " + "x" * 200,
        description="Row count is 0 since 06:00 " * 200,
        severity="critical",
        check_result_ids=[world.orders_fail.pk],
    )
    incidents.update_incident(incident.pk, by=world.editor, status="investigating", lead_id=world.manager.pk)
    incidents.update_incident(
        incident.pk, by=world.editor, status="resolved", resolution_notes="Reloaded the table"
    )
    incidents.attach_check_results(incident.pk, [world.orders_warn.pk], by=world.editor)
    push(world.admin, "warehouse", "orders", *[(f"check {n}", "fail", n) for n in range(15)])


SENDERS: list[tuple[str, dict[str, Any]]] = [("slack", BLOCK_KIT_MESSAGE), ("msteams", ADAPTIVE_CARD_MESSAGE)]


@pytest.mark.parametrize(("kind", "schema"), SENDERS)
def test_every_event_is_a_valid_message(
    world: World, receiver: Receiver, fast: LazySettings, kind: str, schema: dict[str, Any]
) -> None:
    integration, secret = add_webhook(world, receiver.url, kind=kind, events=ALL_EVENTS)
    assert secret == ""
    make_every_event(world)
    integrations.send_test(integration.pk, by=world.admin)
    drain()

    requests = receiver.wait_for(6)
    for request in requests:
        jsonschema_rs.validate(schema, request.json())
        assert "webhook-signature" not in request.headers


def texts(message: Any) -> list[str]:
    if isinstance(message, dict):
        return [v for k, v in message.items() if k in ("text", "value", "title") and isinstance(v, str)] + [
            t for v in message.values() for t in texts(v)
        ]
    if isinstance(message, list):
        return [t for v in message for t in texts(v)]
    return []


def test_slack_text_is_escaped_and_names_the_incident(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url, kind="slack")
    incident = incidents.create_incident(
        by=world.editor, title="Orders <!channel> & co", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    message = receiver.wait_for(1)[0].json()
    assert message["text"].startswith(f"Incident #{incident.number} opened")
    mrkdwn = [t for t in texts(message["blocks"][1:]) if "<" in t or "&" in t]
    assert all("<!channel>" not in t for t in mrkdwn)
    button = message["blocks"][-1]["elements"][0]
    assert button["url"].endswith(f"/incidents/{incident.number}")


def test_teams_card_lists_failing_checks_and_links_the_dataset(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url, kind="msteams", events=["checkEvaluation"])
    push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0), ("late", "warn", 2))
    drain()

    card = receiver.wait_for(1)[0].json()["attachments"][0]["content"]
    shown = texts(card["body"])
    assert shown[0] == "1 check failed, 1 warned on warehouse/orders"
    assert "FAIL · row_count > 0 (value 0)" in shown
    assert card["actions"][0]["url"].endswith(f"/datasets/{world.orders.pk}")


@pytest.mark.parametrize("kind", ["slack", "msteams"])
def test_a_resolution_says_why_and_a_change_of_reason_says_from_what(
    world: World, receiver: Receiver, fast: LazySettings, kind: str
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url, kind=kind, events=["incidentUpdated"])
    incidents.update_incident(
        incident.pk,
        by=world.editor,
        status="resolved",
        resolution_notes="A test load.",
        resolution_reason="expected",
    )
    incidents.update_incident(incident.pk, by=world.editor, resolution_reason="falsePositive")
    drain()

    resolved, changed = (texts(request.json()) for request in receiver.wait_for(2))
    assert any("Resolved (Expected behaviour): A test load." in text for text in resolved)
    assert any("Resolution reason: none → Expected behaviour" in text for text in resolved)
    assert any("Resolution reason: Expected behaviour → False positive" in text for text in changed)


@pytest.mark.parametrize("kind", ["slack", "msteams"])
def test_their_urls_are_never_shown_again(world: World, fast: LazySettings, kind: str) -> None:
    integration, _ = add_webhook(world, "http://127.0.0.1:9/services/T000/B000/XXXXSECRET?sig=abc", kind=kind)
    found = integrations.get_integration(integration.pk, by=world.admin)
    assert found.url_hint == "http://127.0.0.1:9/…"


def test_their_urls_are_not_logged_when_delivering(
    world: World, receiver: Receiver, fast: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_webhook(world, receiver.url + "/T000/B000/XXXXSECRET", kind="slack")
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    assert receiver.wait_for(1)[0].path == "/hook/T000/B000/XXXXSECRET"
    assert "XXXXSECRET" not in caplog.text
