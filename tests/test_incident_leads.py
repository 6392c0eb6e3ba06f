"""Who may lead an incident: someone who can change it, that is who holds Manage incidents on at least one
of its datasets. A lead chosen before that rule keeps the incident until someone hands it over."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quell.accounts.models import Responsibility, User
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.lib.errors import Invalid
from tests.conftest import ClientFor, World

# Whether each user of the world may lead an incident on the private orders dataset.
MAY_LEAD = [("admin", True), ("manager", True), ("editor", True), ("viewer", False), ("outsider", False)]


def create(client: httpx.Client, *result_ids: int, **fields: Any) -> httpx.Response:
    return client.post(
        "/incidents", json={"title": "Orders table is empty", "checkResultIds": result_ids, **fields}
    )


def created(client: httpx.Client, *result_ids: int) -> dict[str, Any]:
    response = create(client, *result_ids)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def lead_of(incident_id: int) -> int:
    return Incident.objects.values_list("lead_id", flat=True).get(pk=incident_id)


def assert_refused_lead(response: httpx.Response, lead: User) -> None:
    """Refused naming the field and the person: who cannot even see the incident's datasets keeps the
    code clients knew before the Manage rule; who sees them but may not change them gets the new one."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "leadId"
    assert lead.display_name in body["message"]
    if lead.email == "outsider@example.com":
        assert body["code"] == "lead_cannot_view"
    else:
        assert body["code"] == "lead_cannot_manage"
        assert "Manage incidents" in body["message"]


@pytest.mark.parametrize(("lead", "may_lead"), MAY_LEAD)
def test_a_new_incident_takes_a_lead_only_who_can_change_it(
    client_for: ClientFor, world: World, lead: str, may_lead: bool
) -> None:
    response = create(client_for("editor"), world.orders_fail.pk, leadId=world.user(lead).pk)

    if may_lead:
        assert response.status_code == 201, response.text
        assert response.json()["lead"]["id"] == world.user(lead).pk
    else:
        assert_refused_lead(response, world.user(lead))
        assert not Incident.objects.exists()


@pytest.mark.parametrize(("lead", "may_lead"), MAY_LEAD)
def test_an_incident_is_handed_only_to_a_lead_who_can_change_it(
    client_for: ClientFor, world: World, lead: str, may_lead: bool
) -> None:
    editor = client_for("editor")
    incident = created(editor, world.orders_fail.pk)

    response = editor.patch(f"/incidents/{incident['id']}", json={"leadId": world.user(lead).pk})

    if may_lead:
        assert response.status_code == 200, response.text
        assert lead_of(incident["id"]) == world.user(lead).pk
    else:
        assert_refused_lead(response, world.user(lead))
        assert lead_of(incident["id"]) == world.editor.pk
        assert Incident.objects.get(pk=incident["id"]).version == incident["version"]


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("admin", 200),
        ("manager", 200),
        ("editor", 200),
        ("viewer", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_who_may_hand_an_incident_to_a_lead_who_qualifies(
    client_for: ClientFor, world: World, caller: str, status: int
) -> None:
    incident = created(client_for("editor"), world.orders_fail.pk)

    response = client_for(caller).patch(f"/incidents/{incident['id']}", json={"leadId": world.manager.pk})

    assert response.status_code == status, response.text
    assert lead_of(incident["id"]) == (world.manager.pk if status == 200 else world.editor.pk)


def test_a_lead_who_manages_incidents_on_one_of_the_datasets_is_accepted(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")
    incident = created(admin, world.orders_fail.pk, world.customers_fail.pk)
    # The outsider cannot see orders; an Editor on customers, they can change the incident.
    Responsibility.objects.create(dataset=world.customers, user=world.outsider, role=world.role("Editor"))

    response = admin.patch(f"/incidents/{incident['id']}", json={"leadId": world.outsider.pk})

    assert response.status_code == 200, response.text
    assert lead_of(incident["id"]) == world.outsider.pk


def test_a_lead_who_can_view_every_dataset_but_manage_none_is_refused(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")
    incident = created(admin, world.orders_fail.pk, world.customers_fail.pk)

    response = admin.patch(f"/incidents/{incident['id']}", json={"leadId": world.viewer.pk})

    assert_refused_lead(response, world.viewer)


def test_a_lead_who_cannot_change_the_incident_keeps_it_through_other_changes(
    client_for: ClientFor, world: World
) -> None:
    # As an incident made before leads needed Manage incidents: its lead may only view orders.
    editor = client_for("editor")
    incident = created(editor, world.orders_fail.pk)
    Incident.objects.filter(pk=incident["id"]).update(lead=world.viewer)

    response = editor.patch(
        f"/incidents/{incident['id']}",
        json={"leadId": world.viewer.pk, "severity": "critical", "status": "investigating"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["lead"]["id"] == world.viewer.pk
    assert response.json()["severity"] == "critical"


def test_the_service_refuses_a_lead_who_cannot_change_the_incident(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Empty", check_result_ids=[world.orders_fail.pk]
    )

    with pytest.raises(Invalid) as refused:
        incidents.update_incident(incident.pk, by=world.manager, lead_id=world.viewer.pk)
    with pytest.raises(Invalid) as refused_at_creation:
        incidents.create_incident(
            by=world.editor, title="Empty", check_result_ids=[world.orders_fail.pk], lead_id=world.viewer.pk
        )

    assert (refused.value.code, refused.value.field) == ("lead_cannot_manage", "leadId")
    assert (refused_at_creation.value.code, refused_at_creation.value.field) == (
        "lead_cannot_manage",
        "leadId",
    )
    incident.refresh_from_db()
    assert incident.lead_id == world.editor.pk
