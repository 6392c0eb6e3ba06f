"""Attaching more warn and fail results to an open incident."""

from __future__ import annotations

from typing import Any

import httpx

from quell.accounts.models import Responsibility
from quell.incidents.models import Incident, IncidentCheckResult, IncidentDataset, TimelineEvent
from tests.conftest import ClientFor, World, push


def create_incident(client: httpx.Client, *result_ids: int) -> dict[str, Any]:
    response = client.post(
        "/incidents", json={"title": "Orders table is empty", "checkResultIds": list(result_ids)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def attach(client: httpx.Client, incident_id: int, *result_ids: int, **extra: Any) -> httpx.Response:
    return client.post(
        f"/incidents/{incident_id}/checkResults", json={"checkResultIds": list(result_ids), **extra}
    )


def stored(incident_id: int) -> dict[str, Any]:
    """Links, datasets, version and timeline as the database holds them, to show that nothing changed."""
    return {
        "results": sorted(
            IncidentCheckResult.objects.filter(incident_id=incident_id).values_list(
                "check_result_id", flat=True
            )
        ),
        "datasets": sorted(
            IncidentDataset.objects.filter(incident_id=incident_id).values_list("dataset_id", flat=True)
        ),
        "version": Incident.objects.get(pk=incident_id).version,
        "updated_at": Incident.objects.get(pk=incident_id).updated_at,
        "timeline": list(
            TimelineEvent.objects.filter(incident_id=incident_id).order_by("id").values_list("pk", flat=True)
        ),
    }


def test_more_results_from_the_same_dataset_can_be_attached(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = attach(editor, incident["id"], world.orders_warn.pk, world.orders_fail_2.pk)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["id"] for r in body["checkResults"]] == [
        world.orders_fail.pk,
        world.orders_warn.pk,
        world.orders_fail_2.pk,
    ]
    assert [d["name"] for d in body["datasets"]] == ["orders"]
    assert body["version"] == 2
    assert stored(incident["id"])["results"] == sorted(
        [world.orders_fail.pk, world.orders_warn.pk, world.orders_fail_2.pk]
    )


def test_a_result_from_another_dataset_brings_that_dataset_into_the_incident(
    client_for: ClientFor, world: World
) -> None:
    # The editor may manage incidents on customers too.
    Responsibility.objects.create(dataset=world.customers, user=world.editor, role=world.role("Editor"))
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = attach(editor, incident["id"], world.customers_fail.pk)

    assert response.status_code == 200, response.text
    body = response.json()
    assert {d["name"] for d in body["datasets"]} == {"orders", "customers"}
    assert world.customers_fail.pk in {r["id"] for r in body["checkResults"]}
    assert stored(incident["id"])["datasets"] == sorted([world.orders.pk, world.customers.pk])


def test_monitor_result_ids_are_accepted_as_in_soda(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = editor.post(
        f"/incidents/{incident['id']}/checkResults", json={"monitorResultIds": [world.orders_warn.pk]}
    )

    assert response.status_code == 200, response.text
    assert world.orders_warn.pk in {r["id"] for r in response.json()["checkResults"]}


def test_each_attached_result_is_recorded_on_the_timeline(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    attach(editor, incident["id"], world.orders_warn.pk, world.orders_fail_2.pk)

    events = editor.get(f"/incidents/{incident['id']}/timeline").json()
    attached = [e["checkResult"]["id"] for e in events if e["type"] == "resultAttached"]
    assert attached == [world.orders_fail.pk, world.orders_warn.pk, world.orders_fail_2.pk]


def test_attaching_a_result_that_is_already_linked_changes_nothing(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, world.orders_warn.pk)
    before = stored(incident["id"])

    response = attach(editor, incident["id"], world.orders_warn.pk, world.orders_fail.pk)

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert len(response.json()["checkResults"]) == 2
    assert stored(incident["id"]) == before


def test_of_linked_and_new_results_only_the_new_ones_are_added(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    events_before = TimelineEvent.objects.filter(incident_id=incident["id"]).count()

    response = attach(editor, incident["id"], world.orders_fail.pk, world.orders_warn.pk)

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert IncidentCheckResult.objects.filter(incident_id=incident["id"]).count() == 2
    assert TimelineEvent.objects.filter(incident_id=incident["id"]).count() == events_before + 1


def test_a_passing_result_cannot_be_attached(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = attach(editor, incident["id"], world.orders_warn.pk, world.orders_pass.pk)

    assert response.status_code == 400
    assert response.json()["code"] == "check_result_not_failing"
    assert stored(incident["id"]) == before


def test_attaching_needs_manage_incidents_on_the_results_dataset(client_for: ClientFor, world: World) -> None:
    # The editor manages incidents on orders but only views customers, as everyone does.
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = attach(editor, incident["id"], world.customers_fail.pk)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert stored(incident["id"]) == before


def test_a_viewer_of_the_incident_cannot_attach_results(client_for: ClientFor, world: World) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)
    before = stored(incident["id"])

    response = attach(client_for("viewer"), incident["id"], world.orders_warn.pk)

    assert response.status_code == 403
    assert stored(incident["id"]) == before


def test_results_the_caller_cannot_view_are_unknown(client_for: ClientFor, world: World) -> None:
    (payroll_fail,) = push(world.admin, "warehouse", "payroll", ("row_count > 0", "fail", 0))
    Responsibility.objects.filter(dataset=payroll_fail.dataset).delete()  # private to admins
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = attach(editor, incident["id"], payroll_fail.pk)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_check_results"
    assert str(payroll_fail.pk) in response.json()["message"]
    assert stored(incident["id"]) == before


def test_unknown_result_ids_are_refused(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = attach(editor, incident["id"], world.orders_warn.pk, 999_999)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_check_results"
    assert "999999" in response.json()["message"]
    assert stored(incident["id"]) == before


def test_an_empty_list_of_results_is_refused(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = attach(editor, incident["id"])

    # The schema asks for at least one: a 400 naming the field.
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "checkResultIds" in response.json()["message"]


def test_attaching_with_a_stale_version_gets_409_and_changes_nothing(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    assert editor.patch(f"/incidents/{incident['id']}", json={"severity": "minor"}).status_code == 200
    before = stored(incident["id"])

    response = attach(editor, incident["id"], world.orders_warn.pk, version=1)

    assert response.status_code == 409
    assert response.json()["current"]["version"] == 2
    assert stored(incident["id"]) == before
