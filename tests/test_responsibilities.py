"""Who holds which role on a dataset: replacing the list, private datasets, unions of roles, custom roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quell.accounts.models import DatasetRole, Responsibility, UserGroup
from quell.accounts.services import create_dataset_role
from quell.incidents.models import Incident
from tests.conftest import ClientFor, World


def user_item(user_id: int, role: DatasetRole | int) -> dict[str, Any]:
    return {"type": "user", "userId": user_id, "roleId": role if isinstance(role, int) else role.pk}


def group_item(group_id: int, role: DatasetRole | int) -> dict[str, Any]:
    return {
        "type": "userGroup",
        "userGroupId": group_id,
        "roleId": role if isinstance(role, int) else role.pk,
    }


def everyone() -> UserGroup:
    return UserGroup.objects.get(is_everyone=True)


def set_responsibilities(client: httpx.Client, dataset_id: int, *items: dict[str, Any]) -> httpx.Response:
    return client.post(f"/datasets/{dataset_id}/responsibilities", json={"responsibilities": list(items)})


def held(dataset_id: int) -> list[tuple[int | None, int | None, str]]:
    """The dataset's responsibilities as the database holds them: (user, group, role)."""
    return list(
        Responsibility.objects.filter(dataset_id=dataset_id)
        .order_by("id")
        .values_list("user_id", "group_id", "role__name")
    )


def create_incident(client: httpx.Client, *result_ids: int) -> httpx.Response:
    return client.post("/incidents", json={"title": "Something broke", "checkResultIds": list(result_ids)})


def test_posting_responsibilities_replaces_the_whole_list(client_for: ClientFor, world: World) -> None:
    manager = client_for("manager")

    response = set_responsibilities(
        manager,
        world.orders.pk,
        user_item(world.manager.pk, world.role("Manager")),
        user_item(world.outsider.pk, world.role("Editor")),
        group_item(everyone().pk, world.role("Viewer")),
    )

    assert response.status_code == 200, response.text
    expected = [
        ("user", "manager@example.com", "Manager"),
        ("user", "outsider@example.com", "Editor"),
        ("userGroup", "Everyone", "Viewer"),
    ]
    assert [(r["type"], r["name"], r["roleName"]) for r in response.json()["content"]] == expected
    listed = manager.get(f"/datasets/{world.orders.pk}/responsibilities").json()["content"]
    assert [(r["type"], r["name"], r["roleName"]) for r in listed] == expected
    # The editor and viewer were not named again, so they hold nothing of their own any more.
    assert not Responsibility.objects.filter(
        dataset=world.orders, user__in=[world.editor, world.viewer]
    ).exists()


def test_the_new_list_takes_effect_at_once(client_for: ClientFor, world: World) -> None:
    set_responsibilities(
        client_for("manager"),
        world.orders.pk,
        user_item(world.manager.pk, world.role("Manager")),
        user_item(world.viewer.pk, world.role("Editor")),
    )

    assert create_incident(client_for("viewer"), world.orders_fail.pk).status_code == 201
    assert create_incident(client_for("editor"), world.orders_fail.pk).status_code == 400
    assert client_for("editor").get(f"/datasets/{world.orders.pk}").status_code == 404


def test_a_bare_list_is_accepted_as_the_body(client_for: ClientFor, world: World) -> None:
    response = client_for("admin").post(
        f"/datasets/{world.customers.pk}/responsibilities",
        json=[user_item(world.editor.pk, world.role("Editor"))],
    )

    assert response.status_code == 200, response.text
    assert held(world.customers.pk) == [(world.editor.pk, None, "Editor")]


def test_removing_everyone_makes_the_dataset_private_to_those_named(
    client_for: ClientFor, world: World
) -> None:
    outsider = client_for("outsider")
    assert outsider.get(f"/datasets/{world.customers.pk}").status_code == 200

    response = set_responsibilities(
        client_for("admin"), world.customers.pk, user_item(world.viewer.pk, world.role("Viewer"))
    )

    assert response.status_code == 200, response.text
    assert outsider.get(f"/datasets/{world.customers.pk}").status_code == 404
    assert outsider.get(f"/checks/{world.customers_fail.check_ref_id}").status_code == 404
    assert client_for("editor").get(f"/datasets/{world.customers.pk}").status_code == 404
    assert client_for("viewer").get(f"/datasets/{world.customers.pk}").status_code == 200


def test_an_incident_on_a_dataset_made_private_disappears_for_those_left_out(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")
    incident = create_incident(admin, world.customers_fail.pk).json()
    assert client_for("outsider").get(f"/incidents/{incident['id']}").status_code == 200

    set_responsibilities(admin, world.customers.pk, user_item(world.viewer.pk, world.role("Viewer")))

    assert client_for("outsider").get(f"/incidents/{incident['id']}").status_code == 404
    assert client_for("viewer").get(f"/incidents/{incident['id']}").status_code == 200


def test_a_user_gets_the_union_of_their_own_roles_and_their_groups_roles(
    client_for: ClientFor, world: World
) -> None:
    checks_only = create_dataset_role(by=world.admin, name="Check author", permissions={"manage_checks"})
    incidents_only = create_dataset_role(by=world.admin, name="Responder", permissions={"manage_incidents"})
    on_call = UserGroup.objects.create(name="On call")
    on_call.members.add(world.outsider)
    response = set_responsibilities(
        client_for("admin"),
        world.orders.pk,
        user_item(world.outsider.pk, checks_only),
        group_item(on_call.pk, incidents_only),
    )
    assert response.status_code == 200, response.text
    outsider = client_for("outsider")

    # Manage checks comes from the outsider's own role, Manage incidents from the group's.
    pushed = outsider.post(
        "/checkResults",
        json={
            "dataTimestamp": "2026-11-02T06:00:00Z",
            "results": [
                {
                    "dataSource": "warehouse",
                    "dataset": "orders",
                    "check": {"name": "row_count > 0"},
                    "outcome": "fail",
                }
            ],
        },
    )
    assert pushed.status_code == 201, pushed.text
    assert create_incident(outsider, world.orders_fail.pk).status_code == 201


def test_a_role_held_through_a_group_counts_like_ones_own(client_for: ClientFor, world: World) -> None:
    on_call = UserGroup.objects.create(name="On call")
    on_call.members.add(world.viewer)
    # The viewer keeps their own Viewer role and gets Editor through the group.
    Responsibility.objects.create(dataset=world.orders, group=on_call, role=world.role("Editor"))

    assert create_incident(client_for("viewer"), world.orders_fail.pk).status_code == 201


def test_a_role_without_view_adds_its_permissions_only_to_someone_who_can_view(
    client_for: ClientFor, world: World
) -> None:
    blind = DatasetRole.objects.create(name="Incident bot", view_dataset=False, manage_incidents=True)
    bots = UserGroup.objects.create(name="Bots")
    bots.members.add(world.outsider, world.viewer)
    Responsibility.objects.create(dataset=world.orders, group=bots, role=blind)

    # The outsider cannot see orders, so the role gives them nothing; the viewer can, so it adds up.
    refused = create_incident(client_for("outsider"), world.orders_fail.pk)
    assert refused.status_code == 400
    assert refused.json()["code"] == "unknown_check_results"
    assert create_incident(client_for("viewer"), world.orders_fail.pk).status_code == 201


def test_a_custom_role_with_manage_incidents_lets_its_holder_create_incidents(
    client_for: ClientFor, world: World
) -> None:
    responder = create_dataset_role(by=world.admin, name="Responder", permissions={"manage_incidents"})
    assert responder.view_dataset  # every other permission presupposes seeing the dataset
    outsider = client_for("outsider")
    assert create_incident(outsider, world.orders_fail.pk).status_code == 400

    response = set_responsibilities(
        client_for("manager"),
        world.orders.pk,
        user_item(world.manager.pk, world.role("Manager")),
        user_item(world.outsider.pk, responder),
    )
    assert response.status_code == 200, response.text

    created = create_incident(outsider, world.orders_fail.pk)
    assert created.status_code == 201, created.text
    assert created.json()["reporter"]["email"] == "outsider@example.com"
    assert Incident.objects.get().reporter == world.outsider
    # The role gives nothing else: no pushing results to the dataset.
    pushed = outsider.post(
        "/checkResults",
        json={
            "dataTimestamp": "2026-11-02T06:00:00Z",
            "results": [
                {
                    "dataSource": "warehouse",
                    "dataset": "orders",
                    "check": {"name": "row_count > 0"},
                    "outcome": "fail",
                }
            ],
        },
    )
    assert pushed.status_code == 403


# --- Refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ("unknown role", "unknown_role"),
        ("unknown user", "unknown_user"),
        ("deactivated user", "unknown_user"),
        ("unknown group", "unknown_group"),
        ("same user twice", "duplicate"),
        ("same group twice", "duplicate"),
    ],
)
def test_an_invalid_item_refuses_the_whole_list_and_changes_nothing(
    client_for: ClientFor, world: World, bad: str, code: str
) -> None:
    viewer_role = world.role("Viewer")
    if bad == "deactivated user":
        world.outsider.is_active = False
        world.outsider.save()
    item = {
        "unknown role": user_item(world.outsider.pk, 999_999),
        "unknown user": user_item(999_999, viewer_role),
        "deactivated user": user_item(world.outsider.pk, viewer_role),
        "unknown group": group_item(999_999, viewer_role),
        "same user twice": user_item(world.manager.pk, viewer_role),
        "same group twice": group_item(everyone().pk, world.role("Editor")),
    }[bad]
    before = held(world.orders.pk)

    response = set_responsibilities(
        client_for("manager"),
        world.orders.pk,
        user_item(world.manager.pk, world.role("Manager")),
        group_item(everyone().pk, viewer_role),
        item,
    )

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == "responsibilities[2]"
    assert held(world.orders.pk) == before


def test_an_item_that_names_no_principal_is_a_bad_request(client_for: ClientFor, world: World) -> None:
    before = held(world.orders.pk)

    response = set_responsibilities(
        client_for("manager"), world.orders.pk, {"type": "user", "roleId": world.role("Viewer").pk}
    )

    assert response.status_code == 400
    assert held(world.orders.pk) == before


def test_changing_responsibilities_needs_manage_permissions(client_for: ClientFor, world: World) -> None:
    before = held(world.orders.pk)

    response = set_responsibilities(
        client_for("editor"), world.orders.pk, user_item(world.editor.pk, world.role("Admin"))
    )

    assert response.status_code == 403
    assert held(world.orders.pk) == before


def test_someone_who_cannot_see_the_dataset_is_told_it_does_not_exist(
    client_for: ClientFor, world: World
) -> None:
    before = held(world.orders.pk)

    response = set_responsibilities(
        client_for("outsider"), world.orders.pk, user_item(world.outsider.pk, world.role("Admin"))
    )

    assert response.status_code == 404
    assert held(world.orders.pk) == before
