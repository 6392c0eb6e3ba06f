"""Quell itself (accounts.services.system_user), the actor of what the incident rules do, is an admin
nobody can use: it cannot log in, has no API key, is in no list of people or picker, cannot lead, and
no admin can deactivate, demote or give it a password, nor count it as another admin."""

from __future__ import annotations

import base64
import io
import sys
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import ApiKey, GlobalRole, User, UserGroup
from quell.catalog import queries as catalog_queries
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.lib.errors import Invalid, NotFound, Unprocessable
from tests.conftest import World

SYSTEM_EMAIL = accounts.SYSTEM_EMAIL


def api(world: World, name: str) -> Client:
    """A test client that sends this user's API key, as a script would."""
    key_id, secret = world.keys[name]
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {token}")


def send(client: Client, method: str, path: str, body: dict[str, Any]) -> Any:
    return getattr(client, method)(f"/api/v1{path}", body, content_type="application/json")


@pytest.fixture
def quell(world: World) -> User:
    return accounts.system_user()


# --- Made once ------------------------------------------------------------------------------------


def test_it_is_made_on_first_use_and_found_after(world: World) -> None:
    first = accounts.system_user()
    second = accounts.system_user()

    assert first.pk == second.pk
    assert User.objects.filter(is_system=True).count() == 1
    assert first.name == "Quell"
    assert first.email == SYSTEM_EMAIL
    assert first.global_role == GlobalRole.ADMIN
    assert not first.has_usable_password()


# --- Cannot log in --------------------------------------------------------------------------------


def test_it_cannot_log_in_through_the_web_form_even_with_a_password_set_behind_its_back(quell: User) -> None:
    # Nothing in Quell gives it a password; one written straight to the table must not open it either.
    quell.set_password("a-password-for-quell")
    quell.save(update_fields=["password"])
    client = Client()

    response = client.post("/login/", {"email": SYSTEM_EMAIL, "password": "a-password-for-quell"})

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_it_gets_no_api_key(quell: User) -> None:
    with pytest.raises(Unprocessable) as refused:
        accounts.create_api_key(user=quell, name="automation")

    assert refused.value.code == "system_user"
    assert not ApiKey.objects.filter(user=quell).exists()


def test_a_key_written_straight_to_the_table_opens_neither_the_api_nor_soda_core(quell: User) -> None:
    key, secret = ApiKey.issue(quell, name="put there by hand")
    token = base64.b64encode(f"{key.key_id}:{secret}".encode()).decode()

    rest = Client(HTTP_AUTHORIZATION=f"Basic {token}").get("/api/v1/test-login")
    soda = Client().post(
        "/api/command",
        {"type": "login", "apiKeyId": key.key_id, "apiKeySecret": secret},
        content_type="application/json",
    )

    assert rest.status_code == 401
    assert soda.status_code == 401
    assert "token" not in soda.json()


def test_the_createadmin_command_will_not_give_it_a_password(quell: User) -> None:
    with pytest.raises(Unprocessable) as refused:
        accounts.set_admin(SYSTEM_EMAIL, "a-long-enough-password")

    assert refused.value.code == "system_user"
    quell.refresh_from_db()
    assert not quell.has_usable_password()


def test_the_setpassword_command_does_not_know_it(quell: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-password\n"))

    with pytest.raises(CommandError, match="no user"):
        call_command("setpassword", "--email", SYSTEM_EMAIL, "--password-stdin")

    quell.refresh_from_db()
    assert not quell.has_usable_password()


# --- In no list of people -------------------------------------------------------------------------


def test_it_is_not_among_the_users_of_the_api(world: World, quell: User) -> None:
    response = api(world, "admin").get("/api/v1/users?size=100")

    assert response.status_code == 200
    emails = [user["email"] for user in response.json()["content"]]
    assert SYSTEM_EMAIL not in emails
    assert "alice@example.com" in emails


def test_it_is_not_on_the_users_settings_page(world: World, quell: User) -> None:
    client = Client()
    client.force_login(world.admin)

    page = client.get("/settings/users")

    assert page.status_code == 200
    assert SYSTEM_EMAIL not in page.content.decode()


def test_it_is_in_no_list_of_people_nor_any_picker(world: World, quell: User) -> None:
    group = accounts.create_group(by=world.admin, name="Data team")

    assert quell not in account_queries.list_users(by=world.admin)
    assert quell not in account_queries.list_people(by=world.admin)
    assert quell not in account_queries.member_candidates(group.pk, by=world.admin)
    _, people = catalog_queries.role_candidates(world.orders.pk, by=world.admin)
    assert quell not in people
    # An admin holds Manage incidents everywhere, and so does Quell's admin role: still no lead.
    assert quell not in incident_queries.lead_candidates(
        {world.orders.pk, world.customers.pk}, by=world.admin
    )
    assert quell not in incident_queries.lead_candidates({world.orders.pk}, by=world.admin, search="quell")


def test_the_incident_page_does_not_offer_it_as_lead(world: World, quell: User) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    client = Client()
    client.force_login(world.admin)

    page = client.get(f"/incidents/{incident.number}")

    offered = [value for value, _ in page.context["edit_form"].fields["lead"].choices]
    assert quell.pk not in [int(str(value)) for value in offered if value != ""]
    assert world.manager.pk in [int(str(value)) for value in offered if value != ""]


# --- Cannot lead, join or hold a role -------------------------------------------------------------


def test_it_cannot_be_made_lead_of_a_new_incident(world: World, quell: User) -> None:
    response = send(
        api(world, "editor"),
        "post",
        "/incidents",
        {"title": "Led by a machine", "checkResultIds": [world.orders_fail.pk], "leadId": quell.pk},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_lead"
    assert not Incident.objects.exists()


def test_it_cannot_be_made_lead_of_an_open_incident(world: World, quell: User) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )

    response = send(api(world, "admin"), "patch", f"/incidents/{incident.pk}", {"leadId": quell.pk})

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_lead"
    incident.refresh_from_db()
    assert incident.lead_id == world.editor.pk
    assert incident.version == 1


def test_it_cannot_join_a_group(world: World, quell: User) -> None:
    group = accounts.create_group(by=world.admin, name="Data team")

    with pytest.raises(Invalid) as refused:
        accounts.set_group_members(group.pk, [world.viewer.pk, quell.pk], by=world.admin)

    assert refused.value.code == "unknown_user"
    assert not UserGroup.objects.get(pk=group.pk).members.exists()


def test_it_cannot_be_given_a_role_on_a_dataset(world: World, quell: User) -> None:
    body = {"responsibilities": [{"type": "user", "userId": quell.pk, "roleId": world.role("Viewer").pk}]}
    before = list(world.orders.responsibilities.values_list("user_id", "role_id"))

    response = send(api(world, "admin"), "post", f"/datasets/{world.orders.pk}/responsibilities", body)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_user"
    assert list(world.orders.responsibilities.values_list("user_id", "role_id")) == before


# --- Nobody's to manage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda quell, admin: accounts.set_user_active(quell.pk, False, by=admin),
        lambda quell, admin: accounts.set_global_role(quell.pk, GlobalRole.USER, by=admin),
        lambda quell, admin: accounts.set_password(quell.pk, "a-long-enough-password", by=admin),
        lambda quell, admin: accounts.set_password(quell.pk, "a-long-enough-password", by=None),
    ],
    ids=["deactivate", "demote", "set password", "set password at the command line"],
)
def test_no_admin_can_deactivate_demote_or_give_it_a_password(world: World, quell: User, change: Any) -> None:
    with pytest.raises(NotFound):
        change(quell, world.admin)

    quell.refresh_from_db()
    assert quell.is_active
    assert quell.global_role == GlobalRole.ADMIN
    assert not quell.has_usable_password()


@pytest.mark.parametrize(
    "form",
    [
        {"action": "deactivate"},
        {"action": "role", "global_role": "user"},
        {"action": "password", "new_password": "a-long-enough-password"},
    ],
    ids=["deactivate", "demote", "set password"],
)
def test_its_settings_page_does_not_exist(world: World, quell: User, form: dict[str, str]) -> None:
    client = Client()
    client.force_login(world.admin)

    assert client.get(f"/settings/users/{quell.pk}").status_code == 404
    assert client.post(f"/settings/users/{quell.pk}", form).status_code == 404
    quell.refresh_from_db()
    assert quell.is_active
    assert quell.global_role == GlobalRole.ADMIN
    assert not quell.has_usable_password()


def test_it_is_not_another_active_admin_so_the_last_real_one_stays_an_admin(
    world: World, quell: User
) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.set_global_role(world.admin.pk, GlobalRole.USER, by=world.admin)

    assert refused.value.code == "last_admin"
    world.admin.refresh_from_db()
    assert world.admin.global_role == GlobalRole.ADMIN
