"""The profile's Change password form and the admin's Set a new password form on a user's settings page."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import LazySettings
from django.test import Client

from quell.accounts import logins
from quell.accounts.models import LoginFailure, User
from tests.conftest import World
from tests.web.conftest import ClientAs

OLD = "pw-for-tests"
NEW = "a fresh long passphrase"


def can_log_in(email: str, password: str) -> bool:
    return Client().post("/login/", {"email": email, "password": password}).status_code == 302


def change(client: Client, current: str = OLD, new: str = NEW, again: str | None = None) -> Any:
    return client.post(
        "/profile/password",
        {
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def password_hash(user: User) -> str:
    return User.objects.get(pk=user.pk).password


# --- Profile: change your own ---------------------------------------------------------------------


def test_the_profile_offers_to_change_the_password(client_as: ClientAs, world: World) -> None:
    page = client_as("viewer").get("/profile/").content.decode()

    assert "Change password" in page
    assert 'action="/profile/password"' in page
    assert 'autocomplete="current-password"' in page
    assert 'autocomplete="new-password"' in page


def test_changing_your_password_keeps_you_signed_in_and_says_so(client_as: ClientAs, world: World) -> None:
    client = client_as("viewer")

    response = change(client)

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    assert "Your password is changed." in client.get("/profile/").content.decode()
    assert can_log_in("viewer@example.com", NEW)
    assert not can_log_in("viewer@example.com", OLD)


def test_changing_your_password_signs_out_your_other_sessions(client_as: ClientAs, world: World) -> None:
    this, other, someone_else = client_as("viewer"), client_as("viewer"), client_as("editor")

    change(this)

    assert this.get("/profile/").status_code == 200
    assert other.get("/profile/").status_code == 302
    assert someone_else.get("/profile/").status_code == 200


def test_a_wrong_current_password_is_refused_at_its_field_and_counted(
    client_as: ClientAs, world: World
) -> None:
    before = password_hash(world.viewer)

    response = change(client_as("viewer"), current="a guess")

    # The page answers with the refusal's status, as the API does: 400 for a rule about the account.
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_current_password_error"' in page
    assert "That is not your current password." in page
    assert password_hash(world.viewer) == before
    assert LoginFailure.objects.filter(email="viewer@example.com").count() == 1


def test_behind_the_proxy_a_wrong_current_password_counts_against_the_client(
    client_as: ClientAs, world: World, settings: LazySettings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]  # the test client's peer is 127.0.0.1
    for n in range(logins.LOGIN_FAILURES_PER_IP):
        logins.record_login_failure(f"guess{n}@example.com", "203.0.113.7")
    locked, other = client_as("viewer"), client_as("viewer")
    locked.defaults["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    other.defaults["HTTP_X_FORWARDED_FOR"] = "198.51.100.2"

    assert change(locked, current="a guess").status_code == 429
    assert change(other, current="a guess").status_code == 400
    assert LoginFailure.objects.get(email="viewer@example.com").ip == "198.51.100.2"


def test_two_different_new_passwords_are_refused_at_the_second(client_as: ClientAs, world: World) -> None:
    before = password_hash(world.viewer)

    response = change(client_as("viewer"), again=NEW + "!")

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_new_password_again_error"' in page
    assert "The two new passwords differ" in page
    assert password_hash(world.viewer) == before
    # Nothing was tried against the current password, so nothing counts towards the lockout.
    assert not LoginFailure.objects.exists()


def test_a_weak_new_password_is_refused_with_the_validators_message(
    client_as: ClientAs, world: World
) -> None:
    before = password_hash(world.viewer)

    response = change(client_as("viewer"), new="short")

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_new_password_error"' in page
    assert "This password is too short. It must contain at least 8 characters." in page
    assert password_hash(world.viewer) == before


def test_after_five_wrong_tries_the_form_is_locked_like_the_log_in(client_as: ClientAs, world: World) -> None:
    client = client_as("viewer")
    before = password_hash(world.viewer)
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        change(client, current="a guess")

    response = change(client)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    page = response.content.decode()
    assert 'id="id_current_password_error"' in page
    assert "Too many wrong passwords. Try again in 15 minutes." in page
    assert password_hash(world.viewer) == before
    # The same failures lock the log-in form as well.
    assert not can_log_in("viewer@example.com", OLD)


def test_anonymous_visitors_are_sent_to_log_in(world: World) -> None:
    response = change(Client())

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_password_form_is_post_only_and_a_get_goes_to_the_profile(
    client_as: ClientAs, world: World
) -> None:
    response = client_as("viewer").get("/profile/password")

    assert response.status_code == 302
    assert response["Location"] == "/profile/#password-heading"


# --- Settings: an admin sets one ------------------------------------------------------------------


def set_for(client: Client, user: User, new: str = NEW) -> Any:
    return client.post(f"/settings/users/{user.pk}", {"action": "password", "new_password": new})


def test_the_user_page_offers_admins_to_set_a_new_password(client_as: ClientAs, world: World) -> None:
    page = client_as("admin").get(f"/settings/users/{world.viewer.pk}").content.decode()

    assert "Set a new password" in page
    assert 'name="new_password"' in page


def test_an_admin_sets_a_new_password_and_the_users_sessions_end(client_as: ClientAs, world: World) -> None:
    admin, theirs = client_as("admin"), client_as("viewer")

    response = set_for(admin, world.viewer)

    assert response.status_code == 302
    assert "viewer@example.com has a new password" in admin.get(response["Location"]).content.decode()
    assert theirs.get("/profile/").status_code == 302
    assert can_log_in("viewer@example.com", NEW)
    assert not can_log_in("viewer@example.com", OLD)


def test_an_admin_setting_their_own_password_here_stays_signed_in(client_as: ClientAs, world: World) -> None:
    admin = client_as("admin")

    set_for(admin, world.admin)

    assert admin.get("/settings/users").status_code == 200
    assert can_log_in("alice@example.com", NEW)


def test_a_weak_password_set_by_an_admin_is_refused_at_the_field(client_as: ClientAs, world: World) -> None:
    before = password_hash(world.viewer)

    response = set_for(client_as("admin"), world.viewer, new="short")

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_new_password_error"' in page
    assert "This password is too short." in page
    assert password_hash(world.viewer) == before


def test_an_empty_password_is_refused_at_the_field(client_as: ClientAs, world: World) -> None:
    response = set_for(client_as("admin"), world.viewer, new="")

    assert response.status_code == 400
    assert 'id="id_new_password_error"' in response.content.decode()


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_set_passwords(client_as: ClientAs, world: World, role: str) -> None:
    before = password_hash(world.viewer)

    response = set_for(client_as(role), world.viewer)

    assert response.status_code == 403
    assert password_hash(world.viewer) == before


def test_anonymous_visitors_cannot_set_passwords(world: World) -> None:
    before = password_hash(world.viewer)

    response = set_for(Client(), world.viewer)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert password_hash(world.viewer) == before


# --- Like the email -------------------------------------------------------------------------------


def test_a_new_password_equal_to_your_email_is_refused_at_its_field(
    client_as: ClientAs, world: World
) -> None:
    response = change(client_as("viewer"), new="viewer@example.com")

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_new_password_error"' in page
    assert "The password is too similar to the email." in page
    assert can_log_in("viewer@example.com", OLD)


def test_an_admin_setting_a_password_equal_to_the_email_is_refused_at_the_field(
    client_as: ClientAs, world: World
) -> None:
    response = set_for(client_as("admin"), world.viewer, new="viewer@example.com")

    assert response.status_code == 400
    assert "The password is too similar to the email." in response.content.decode()
    assert can_log_in("viewer@example.com", OLD)


def test_an_admin_adding_a_user_whose_password_is_their_email_is_refused_at_the_field(
    client_as: ClientAs, world: World
) -> None:
    response = client_as("admin").post(
        "/settings/users",
        {"email": "nina@example.com", "name": "", "password": "nina@example.com", "global_role": "user"},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_password_error"' in page
    assert "The password is too similar to the email." in page
    assert not User.objects.filter(email="nina@example.com").exists()
