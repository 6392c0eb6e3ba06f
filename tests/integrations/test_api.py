"""The integrations API: admins only, secrets answered once, errors as {code, message}, log and redeliver."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import LazySettings

from quell.integrations.models import Delivery, Integration
from tests.conftest import ClientFor, World
from tests.integrations.conftest import Receiver, drain

NON_ADMINS = ["manager", "editor", "viewer", "outsider"]


def operations(integration_id: int, delivery_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/integrations/{integration_id}"
    return [
        ("GET", "/integrations", None),
        ("POST", "/integrations", {"name": "X", "kind": "webhook", "url": "https://example.com/hook"}),
        ("GET", base, None),
        ("PATCH", base, {"name": "Renamed"}),
        ("POST", f"{base}/rotateSecret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{delivery_id}", None),
        ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ("DELETE", base, None),
    ]


@pytest.fixture
def hook(world: World, fast: LazySettings, client_for: ClientFor, receiver: Receiver) -> tuple[int, int]:
    created = client_for("admin").post(
        "/integrations", json={"name": "Receiver", "kind": "webhook", "url": receiver.url}
    )
    assert created.status_code == 201, created.text
    integration_id = created.json()["id"]
    sent = client_for("admin").post(f"/integrations/{integration_id}/test")
    assert sent.status_code == 202, sent.text
    drain()
    return integration_id, sent.json()["id"]


@pytest.mark.parametrize("user", NON_ADMINS)
def test_only_admins_may_touch_integrations(client_for: ClientFor, hook: tuple[int, int], user: str) -> None:
    client = client_for(user)
    for method, path, body in operations(*hook):
        response = client.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "forbidden"
    assert Integration.objects.get().name == "Receiver"
    assert Delivery.objects.count() == 1


def test_anonymous_callers_are_asked_to_authenticate(client_for: ClientFor, hook: tuple[int, int]) -> None:
    client = client_for("anonymous")
    for method, path, body in operations(*hook):
        response = client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthorized"


def test_admins_may_do_everything(client_for: ClientFor, hook: tuple[int, int], receiver: Receiver) -> None:
    admin = client_for("admin")
    expected = {"GET": 200, "POST": None, "PATCH": 200, "DELETE": 204}
    for method, path, body in operations(*hook):
        response = admin.request(method, path, json=body)
        assert response.status_code in ((expected[method],) if expected[method] else (200, 201, 202)), (
            method,
            path,
            response.text,
        )


def test_the_signing_secret_is_answered_once_when_created(
    client_for: ClientFor, world: World, fast: LazySettings
) -> None:
    admin = client_for("admin")
    created = admin.post(
        "/integrations",
        json={
            "name": "Jira",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/rest?token=abc",
            "headers": {"X-Token": "t0p"},
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == "http://127.0.0.1:9/rest?…"
    assert body["headerNames"] == ["X-Token"]
    shown = admin.get(f"/integrations/{body['id']}").text + admin.get("/integrations").text
    for secret in (body["secret"], "t0p", "token=abc"):
        assert secret not in shown
    rotated = admin.post(f"/integrations/{body['id']}/rotateSecret").json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != body["secret"]
    assert rotated["previousSecretExpiresAt"] is not None


def test_slack_and_teams_have_no_signing_secret(
    client_for: ClientFor, world: World, fast: LazySettings
) -> None:
    created = client_for("admin").post(
        "/integrations", json={"name": "Chat", "kind": "slack", "url": "http://127.0.0.1:9/services/T/B/X"}
    )
    assert created.json()["secret"] is None
    assert created.json()["signed"] is False
    rotated = client_for("admin").post(f"/integrations/{created.json()['id']}/rotateSecret")
    assert rotated.status_code == 400
    assert rotated.json()["code"] == "not_signed"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        # Refused with a 400 and a code naming why, whether the schema states the rule or cannot (the
        # host's forms, the network policy, whether the datasets exist).
        ({"name": "", "kind": "webhook", "url": "https://example.com/"}, 400, "name_required", "name"),
        ({"name": "X", "kind": "webhook", "url": "ftp://example.com/"}, 400, "invalid_url", "url"),
        ({"name": "X", "kind": "webhook", "url": "https://user:pw@example.com/"}, 400, "invalid_url", "url"),
        ({"name": "X", "kind": "webhook", "url": "http://10.0.0.1/"}, 400, "address_refused", "url"),
        (
            {"name": "X", "kind": "webhook", "url": "https://example.com/", "headers": {"webhook-id": "x"}},
            400,
            "invalid_headers",
            "headers",
        ),
        (
            {"name": "X", "kind": "webhook", "url": "https://example.com/", "headers": {"X-A": "a\r\nb"}},
            400,
            "invalid_headers",
            "headers",
        ),
        (
            {"name": "X", "kind": "slack", "url": "https://example.com/", "headers": {"X-A": "a"}},
            400,
            "invalid_headers",
            "headers",
        ),
        (
            {"name": "X", "kind": "webhook", "url": "https://example.com/", "datasetIds": [999999]},
            400,
            "unknown_datasets",
            "datasetIds",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_creates_nothing(
    client_for: ClientFor, world: World, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = client_for("admin").post("/integrations", json=body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["field"] == field
    assert not Integration.objects.exists()


def test_an_unknown_event_or_kind_is_a_400(client_for: ClientFor, world: World) -> None:
    admin = client_for("admin")
    for body in (
        {"name": "X", "kind": "pager", "url": "https://example.com/"},
        {"name": "X", "kind": "webhook", "url": "https://example.com/", "events": ["incidentDeleted"]},
    ):
        response = admin.post("/integrations", json=body)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_request"


def test_the_delivery_log_shows_attempts_and_a_redelivery_keeps_the_webhook_id(
    client_for: ClientFor, hook: tuple[int, int], receiver: Receiver
) -> None:
    integration_id, delivery_id = hook
    admin = client_for("admin")
    log = admin.get(f"/integrations/{integration_id}/deliveries").json()
    assert log["totalElements"] == 1
    (entry,) = log["content"]
    assert (entry["event"], entry["status"], entry["attempts"], entry["lastStatusCode"]) == (
        "validate",
        "delivered",
        1,
        200,
    )
    detail = admin.get(f"/integrations/{integration_id}/deliveries/{delivery_id}").json()
    assert detail["payload"]["event"] == "validate"
    (attempt,) = detail["attemptLog"]
    assert (attempt["outcome"], attempt["statusCode"], attempt["responseExcerpt"]) == ("delivered", 200, "ok")

    again = admin.post(f"/integrations/{integration_id}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 202
    assert again.json()["redeliveryOf"] == delivery_id
    assert again.json()["webhookId"] == entry["webhookId"]
    drain()
    first, second = receiver.wait_for(2)
    assert first.webhook_id == second.webhook_id == entry["webhookId"]
    counts = admin.get(f"/integrations/{integration_id}").json()
    assert (counts["pendingDeliveries"], counts["failedDeliveries"]) == (0, 0)


def test_an_unfinished_delivery_cannot_be_redelivered(client_for: ClientFor, hook: tuple[int, int]) -> None:
    integration_id, delivery_id = hook
    Delivery.objects.filter(pk=delivery_id).update(status="pending")
    response = client_for("admin").post(f"/integrations/{integration_id}/deliveries/{delivery_id}/redeliver")
    assert response.status_code == 400
    assert response.json()["code"] == "delivery_unfinished"
