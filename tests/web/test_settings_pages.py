"""Settings for admins: organisation, users, groups, dataset roles, and a dataset's responsibilities."""

from __future__ import annotations

import pytest

from quell.accounts.models import DatasetRole, Organization, Responsibility, User, UserGroup
from tests.conftest import World
from tests.web.conftest import ClientAs


def test_an_admin_sets_the_organisation_name_and_everyones_default_role(
    client_as: ClientAs, world: World
) -> None:
    editor_role = world.role("Editor")

    response = client_as("admin").post("/settings/", {"name": "Acme", "default_role": editor_role.pk})

    assert response.status_code == 302
    org = Organization.get()
    assert org.name == "Acme"
    assert org.default_dataset_role == editor_role


def test_choosing_no_default_role_makes_new_datasets_private(client_as: ClientAs, world: World) -> None:
    client_as("admin").post("/settings/", {"name": "Acme", "default_role": ""})

    assert Organization.get().default_dataset_role is None


def test_an_empty_organisation_name_is_refused_at_the_field(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post("/settings/", {"name": " ", "default_role": ""})

    assert response.status_code == 400
    assert 'id="id_name_error"' in response.content.decode()


def test_an_admin_adds_a_user(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(
        "/settings/users",
        {"email": "New@Example.com", "name": "Nina", "password": "a long passphrase", "global_role": "user"},
    )

    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.name == "Nina"
    assert user.check_password("a long passphrase")


def test_adding_a_user_twice_is_refused_at_the_email(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(
        "/settings/users",
        {"email": "editor@example.com", "name": "", "password": "a long passphrase", "global_role": "user"},
    )

    assert response.status_code == 400
    assert "There is already a user editor@example.com." in response.content.decode()


def test_a_weak_password_is_refused_at_the_password(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(
        "/settings/users", {"email": "n@example.com", "password": "short", "global_role": "user"}
    )

    assert response.status_code == 400
    assert 'id="id_password_error"' in response.content.decode()
    assert not User.objects.filter(email="n@example.com").exists()


def test_an_admin_deactivates_and_reactivates_a_user(client_as: ClientAs, world: World) -> None:
    client_as("admin").post(f"/settings/users/{world.viewer.pk}", {"action": "deactivate"})
    world.viewer.refresh_from_db()
    assert not world.viewer.is_active

    client_as("admin").post(f"/settings/users/{world.viewer.pk}", {"action": "activate"})
    world.viewer.refresh_from_db()
    assert world.viewer.is_active


def test_deactivating_and_reactivating_say_what_becomes_of_the_api_keys(
    client_as: ClientAs, world: World
) -> None:
    admin = client_as("admin")
    url = f"/settings/users/{world.viewer.pk}"

    deactivated = admin.post(url, {"action": "deactivate"}, follow=True).content.decode()
    reactivated = admin.post(url, {"action": "activate"}, follow=True).content.decode()

    assert "viewer@example.com is deactivated; their API keys are revoked for good." in deactivated
    assert "their old API keys stay revoked; they make new ones on their profile page." in reactivated


def test_an_admin_cannot_deactivate_themselves(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(f"/settings/users/{world.admin.pk}", {"action": "deactivate"})

    assert response.status_code == 400
    assert "You cannot deactivate yourself." in response.content.decode()


def test_an_admin_changes_a_global_role(client_as: ClientAs, world: World) -> None:
    client_as("admin").post(f"/settings/users/{world.manager.pk}", {"action": "role", "global_role": "admin"})

    world.manager.refresh_from_db()
    assert world.manager.is_admin


def test_the_last_admin_cannot_be_demoted(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(
        f"/settings/users/{world.admin.pk}", {"action": "role", "global_role": "user"}
    )

    assert response.status_code == 400
    assert "The last active admin must stay an admin." in response.content.decode()
    world.admin.refresh_from_db()
    assert world.admin.is_admin


def test_an_admin_creates_a_group_renames_it_and_sets_its_members(client_as: ClientAs, world: World) -> None:
    admin = client_as("admin")
    admin.post("/settings/groups", {"name": "Data team"})
    group = UserGroup.objects.get(name="Data team")

    admin.post(f"/settings/groups/{group.pk}", {"action": "rename", "name": "Data platform"})
    admin.post(
        f"/settings/groups/{group.pk}", {"action": "members", "add": [world.editor.pk, world.viewer.pk]}
    )

    group.refresh_from_db()
    assert group.name == "Data platform"
    assert set(group.members.all()) == {world.editor, world.viewer}


def test_a_group_name_must_be_unique(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post("/settings/groups", {"name": "everyone"})

    assert response.status_code == 400
    assert "There is already a group named everyone." in response.content.decode()


def test_deleting_a_group_removes_its_responsibilities(client_as: ClientAs, world: World) -> None:
    group = UserGroup.objects.create(name="Temps")
    Responsibility.objects.create(dataset=world.orders, group=group, role=world.role("Viewer"))

    client_as("admin").post(f"/settings/groups/{group.pk}", {"action": "delete"})

    assert not UserGroup.objects.filter(pk=group.pk).exists()
    assert not Responsibility.objects.filter(group_id=group.pk).exists()


def test_the_everyone_group_cannot_be_renamed_or_deleted(client_as: ClientAs, world: World) -> None:
    everyone = UserGroup.objects.get(is_everyone=True)

    renamed = client_as("admin").post(f"/settings/groups/{everyone.pk}", {"action": "rename", "name": "All"})
    deleted = client_as("admin").post(f"/settings/groups/{everyone.pk}", {"action": "delete"})

    assert renamed.status_code == deleted.status_code == 400
    assert UserGroup.objects.filter(pk=everyone.pk, name="Everyone").exists()


def test_the_roles_page_shows_each_roles_permissions(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get("/settings/roles").content.decode()

    row = body.split('<th scope="row">Manage incidents</th>')[1].split("</tr>")[0]
    # Admin, Manager, Editor yes; Viewer no.
    assert row.count("yes") == 3
    assert row.count(">no<") == 1


def test_an_admin_creates_edits_and_deletes_a_custom_role(client_as: ClientAs, world: World) -> None:
    admin = client_as("admin")
    admin.post("/settings/roles", {"name": "Triage", "permissions": ["manage_incidents"]})
    role = DatasetRole.objects.get(name="Triage")
    assert role.manage_incidents
    assert role.view_dataset

    admin.post(
        f"/settings/roles/{role.pk}", {"action": "save", "name": "Triage", "permissions": ["manage_checks"]}
    )
    role.refresh_from_db()
    assert role.manage_checks
    assert not role.manage_incidents

    admin.post(f"/settings/roles/{role.pk}", {"action": "delete"})
    assert not DatasetRole.objects.filter(pk=role.pk).exists()


def test_a_role_in_use_cannot_be_deleted(client_as: ClientAs, world: World) -> None:
    role = DatasetRole.objects.create(name="Triage", manage_incidents=True)
    Responsibility.objects.create(dataset=world.orders, user=world.outsider, role=role)

    response = client_as("admin").post(f"/settings/roles/{role.pk}", {"action": "delete"})

    assert response.status_code == 400
    assert "Triage is given in 1 responsibility" in response.content.decode()
    assert DatasetRole.objects.filter(pk=role.pk).exists()


@pytest.mark.parametrize("name", ["Viewer", "Editor"])
def test_built_in_roles_cannot_be_changed(client_as: ClientAs, world: World, name: str) -> None:
    role = world.role(name)

    response = client_as("admin").post(
        f"/settings/roles/{role.pk}", {"action": "save", "name": "Mine", "permissions": ["manage_incidents"]}
    )

    assert response.status_code == 400
    role.refresh_from_db()
    assert role.name == name


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/settings/", {"name": "Mine", "default_role": ""}),
        (
            "/settings/users",
            {"email": "x@example.com", "password": "a long passphrase", "global_role": "admin"},
        ),
        ("/settings/groups", {"name": "Mine"}),
        ("/settings/roles", {"name": "Mine", "permissions": ["manage_incidents"]}),
    ],
)
def test_a_non_admin_posting_a_settings_form_is_refused(
    client_as: ClientAs, world: World, url: str, data: dict[str, object]
) -> None:
    response = client_as("manager").post(url, data)

    assert response.status_code == 403
    assert Organization.get().name != "Mine"
    assert not User.objects.filter(email="x@example.com").exists()
    assert not UserGroup.objects.filter(name="Mine").exists()
    assert not DatasetRole.objects.filter(name="Mine").exists()


def test_a_manager_gives_a_user_a_role_on_their_dataset(client_as: ClientAs, world: World) -> None:
    rows = list(Responsibility.objects.filter(dataset=world.orders).order_by("id"))
    data = {
        "principal": [f"user:{row.user_id}" for row in rows],
        "role": [row.role_id for row in rows],
        "new_principal": f"user:{world.outsider.pk}",
        "new_role": world.role("Viewer").pk,
    }

    response = client_as("manager").post(f"/datasets/{world.orders.pk}/responsibilities", data)

    assert response.status_code == 302
    assert Responsibility.objects.filter(dataset=world.orders, user=world.outsider).exists()
    assert Responsibility.objects.filter(dataset=world.orders).count() == 4


def test_removing_and_changing_responsibilities_replaces_the_list(client_as: ClientAs, world: World) -> None:
    rows = list(Responsibility.objects.filter(dataset=world.orders).order_by("id"))
    manager_role = world.role("Manager").pk
    data = {
        "principal": [f"user:{row.user_id}" for row in rows],
        "role": [manager_role for _ in rows],
        "remove": [f"user:{world.viewer.pk}"],
    }

    client_as("manager").post(f"/datasets/{world.orders.pk}/responsibilities", data)

    held = dict(Responsibility.objects.filter(dataset=world.orders).values_list("user_id", "role__name"))
    assert held == {world.manager.pk: "Manager", world.editor.pk: "Manager"}


def test_an_editor_cannot_change_responsibilities(client_as: ClientAs, world: World) -> None:
    data = {
        "principal": [],
        "role": [],
        "new_principal": f"user:{world.outsider.pk}",
        "new_role": world.role("Admin").pk,
    }

    response = client_as("editor").post(f"/datasets/{world.orders.pk}/responsibilities", data)

    assert response.status_code == 403
    assert not Responsibility.objects.filter(user=world.outsider).exists()


def test_naming_someone_twice_is_refused_with_a_message(client_as: ClientAs, world: World) -> None:
    data = {
        "principal": [f"user:{world.editor.pk}"],
        "role": [world.role("Editor").pk],
        "new_principal": f"user:{world.editor.pk}",
        "new_role": world.role("Viewer").pk,
    }

    response = client_as("manager").post(f"/datasets/{world.orders.pk}/responsibilities", data)

    assert response.status_code == 400
    assert "names the same user twice" in response.content.decode()
    assert Responsibility.objects.filter(dataset=world.orders).count() == 3
