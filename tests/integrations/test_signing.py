"""Webhooks are signed the Standard Webhooks way, checked here with HMAC computed from the spec."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import LazySettings

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from tests.conftest import World
from tests.integrations.conftest import Receiver, add_webhook, drain, expected_signature


def test_a_webhook_is_signed_so_that_an_independent_hmac_verifies_it(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    _, secret = add_webhook(world, receiver.url)
    incidents.create_incident(
        by=world.editor, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    (request,) = receiver.wait_for(1)
    body = request.json()
    assert secret.startswith("whsec_")
    assert request.headers["webhook-id"] == body["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"] == expected_signature(
        secret, request.webhook_id, request.headers["webhook-timestamp"], request.body
    )
    assert request.headers["content-type"] == "application/json"


def test_a_tampered_body_does_not_verify(world: World, receiver: Receiver, fast: LazySettings) -> None:
    _, secret = add_webhook(world, receiver.url)
    incidents.create_incident(
        by=world.editor, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    (request,) = receiver.wait_for(1)
    tampered = request.body.replace(b"Orders are empty", b"Orders are fine")
    timestamp = request.headers["webhook-timestamp"]
    assert request.headers["webhook-signature"] != expected_signature(
        secret, request.webhook_id, timestamp, tampered
    )


def test_during_a_rotation_both_secrets_sign_and_either_verifies(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    integration, old_secret = add_webhook(world, receiver.url)
    rotated, new_secret = integrations.rotate_secret(integration.pk, by=world.admin)
    assert new_secret != old_secret
    assert rotated.previous_secret_expires_at is not None
    integrations.send_test(integration.pk, by=world.admin)
    drain()

    (request,) = receiver.wait_for(1)
    timestamp = request.headers["webhook-timestamp"]
    signatures = request.headers["webhook-signature"].split(" ")
    assert signatures == [
        expected_signature(new_secret, request.webhook_id, timestamp, request.body),
        expected_signature(old_secret, request.webhook_id, timestamp, request.body),
    ]


def test_the_previous_secret_stops_signing_when_its_overlap_ends(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    integration, _ = add_webhook(world, receiver.url)
    _, new_secret = integrations.rotate_secret(integration.pk, by=world.admin)
    integration.refresh_from_db()
    integration.previous_secret_expires_at = integration.updated_at
    integration.save()
    integrations.send_test(integration.pk, by=world.admin)
    drain()

    (request,) = receiver.wait_for(1)
    timestamp = request.headers["webhook-timestamp"]
    assert request.headers["webhook-signature"] == expected_signature(
        new_secret, request.webhook_id, timestamp, request.body
    )


def test_the_payload_keeps_sodas_shape_with_standard_webhooks_id_type_and_timestamp(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    incident = incidents.create_incident(
        by=world.editor,
        title="Orders are empty",
        description="Since 06:00",
        severity="critical",
        check_result_ids=[world.orders_fail.pk, world.orders_warn.pk],
        lead_id=world.manager.pk,
    )
    drain()

    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "incidentCreated"
    assert body["type"] == "incident.created"
    assert body["id"].startswith("msg_")
    assert body["timestamp"].endswith("Z")
    assert body["incidentLinkCallbackUrl"].startswith(
        "http://127.0.0.1:8000/api/v1/integrations/incident-links/"
    )
    sent = body["incident"]
    assert {k: sent[k] for k in ("id", "number", "title", "description", "severity", "status")} == {
        "id": incident.pk,
        "number": incident.number,
        "title": "Orders are empty",
        "description": "Since 06:00",
        "severity": "critical",
        "status": "reported",
    }
    assert sent["sodaCloudUrl"].endswith(f"/incidents/{incident.number}")
    assert sent["lead"]["email"] == "manager@example.com"
    assert sent["reporter"]["email"] == "editor@example.com"
    assert [r["id"] for r in sent["checkResults"]] == [world.orders_fail.pk, world.orders_warn.pk]
    result = sent["checkResults"][0]
    assert result["outcome"] == result["evaluationStatus"] == "fail"
    assert result["datasets"][0]["name"] == "orders"
    assert result["datasets"][0]["datasource"]["name"] == "warehouse"


def test_custom_headers_are_sent_with_each_delivery(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url, headers={"X-Automation-Webhook-Token": "jira-token-123"})
    incidents.create_incident(
        by=world.editor, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    assert receiver.wait_for(1)[0].headers["x-automation-webhook-token"] == "jira-token-123"


def test_the_verification_snippet_in_the_docs_accepts_a_real_delivery_and_refuses_a_forgery(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    page = (Path(__file__).parents[2] / "docs" / "integrations" / "webhook.md").read_text()
    snippet = page.split("<!-- verify-snippet -->\n```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "webhook.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    _, secret = add_webhook(world, receiver.url)
    incidents.create_incident(
        by=world.editor, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )
    drain()

    (request,) = receiver.wait_for(1)
    assert verify(secret, request.headers, request.body)["event"] == "incidentCreated"
    with pytest.raises(ValueError, match="no valid signature"):
        verify(secret, request.headers, request.body.replace(b"empty", b"full!"))
