"""Logging in and out through the web form, and the throttle on repeated failures."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from quell.accounts import services as accounts
from quell.accounts.models import LoginFailure
from tests.conftest import World


def log_in(client: Client, email: str, password: str, next_url: str = "") -> Any:
    data = {"email": email, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data)


def test_the_right_email_and_password_log_in_and_land_on_home(world: World) -> None:
    client = Client()

    response = log_in(client, "Editor@Example.com", "pw-for-tests")

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_logging_in_returns_to_the_page_asked_for(world: World) -> None:
    response = log_in(Client(), "editor@example.com", "pw-for-tests", next_url="/incidents/")

    assert response["Location"] == "/incidents/"


def test_logging_in_never_sends_you_to_another_site(world: World) -> None:
    response = log_in(Client(), "editor@example.com", "pw-for-tests", next_url="https://evil.example/")

    assert response["Location"] == "/"


def test_a_wrong_password_says_so_and_logs_nobody_in(world: World) -> None:
    client = Client()

    response = log_in(client, "editor@example.com", "wrong")

    assert response.status_code == 400
    assert "Email or password is wrong." in response.content.decode()
    assert client.get("/").status_code == 302


def test_an_unknown_email_gets_the_same_message_as_a_wrong_password(world: World) -> None:
    response = log_in(Client(), "nobody@example.com", "pw-for-tests")

    assert response.status_code == 400
    assert "Email or password is wrong." in response.content.decode()


def test_a_deactivated_user_cannot_log_in(world: World) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)

    response = log_in(Client(), "viewer@example.com", "pw-for-tests")

    assert response.status_code == 400


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(world: World) -> None:
    for _ in range(accounts.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")

    response = log_in(Client(), "editor@example.com", "pw-for-tests")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "Too many failed log-ins. Try again in 15 minutes." in response.content.decode()


def test_the_lock_lifts_when_the_failures_are_old(world: World) -> None:
    for _ in range(accounts.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")
    LoginFailure.objects.update(at=timezone.now() - accounts.LOGIN_WINDOW - dt.timedelta(seconds=1))

    response = log_in(Client(), "editor@example.com", "pw-for-tests")

    assert response.status_code == 302


def test_failures_for_one_account_do_not_lock_another(world: World) -> None:
    for _ in range(accounts.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")

    assert log_in(Client(), "viewer@example.com", "pw-for-tests").status_code == 302


def test_many_failures_from_one_address_lock_that_address(world: World) -> None:
    for n in range(accounts.LOGIN_FAILURES_PER_IP):
        log_in(Client(), f"guess{n}@example.com", "wrong")

    response = log_in(Client(), "viewer@example.com", "pw-for-tests")

    assert response.status_code == 429


def test_a_successful_log_in_forgets_earlier_failures(world: World) -> None:
    for _ in range(accounts.LOGIN_FAILURES_PER_EMAIL - 1):
        log_in(Client(), "editor@example.com", "wrong")
    log_in(Client(), "editor@example.com", "pw-for-tests")

    assert not LoginFailure.objects.filter(email="editor@example.com").exists()


def test_logging_out_needs_a_post_and_ends_the_session(world: World) -> None:
    client = Client()
    client.force_login(world.editor)

    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_a_malformed_email_is_refused_at_the_field(world: World, email: str) -> None:
    response = log_in(Client(), email, "pw-for-tests")

    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
