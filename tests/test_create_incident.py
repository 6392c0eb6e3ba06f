"""Creating an incident from warn and fail check results."""

from __future__ import annotations

from quell.incidents.models import Incident, TimelineEvent
from tests.conftest import ClientFor, World


def test_an_editor_creates_an_incident_from_two_results(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents",
        json={
            "title": "Orders table is empty",
            "description": "Nightly load wrote nothing.",
            "severity": "critical",
            "checkResultIds": [world.orders_fail.pk, world.orders_warn.pk],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["title"] == body["name"] == "Orders table is empty"
    assert body["status"] == "reported"
    assert body["severity"] == "critical"
    assert body["reporter"]["email"] == body["lead"]["email"] == "editor@example.com"
    assert {r["id"] for r in body["checkResults"]} == {world.orders_fail.pk, world.orders_warn.pk}
    assert [d["name"] for d in body["datasets"]] == ["orders"]
    assert body["number"] >= 1
    assert body["version"] == 1
    assert body["cloudUrl"].endswith(f"/incidents/{body['number']}")


def test_name_and_monitor_result_ids_are_accepted_as_in_soda(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents",
        json={"name": "Soda-style", "monitorResultIds": [world.orders_fail.pk], "description": ""},
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Soda-style"


def test_a_passing_result_cannot_start_an_incident(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents", json={"title": "Nothing wrong", "checkResultIds": [world.orders_pass.pk]}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "check_result_not_failing"
    assert not Incident.objects.exists()
    assert not TimelineEvent.objects.exists()


def test_a_viewer_cannot_create_an_incident(client_for: ClientFor, world: World) -> None:
    response = client_for("viewer").post(
        "/incidents", json={"title": "x", "checkResultIds": [world.orders_fail.pk]}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Incident.objects.exists()
