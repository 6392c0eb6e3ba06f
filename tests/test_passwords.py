"""Changing your own password, an admin setting one for someone who lost theirs, by service, API and CLI."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.conf import LazySettings
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import Client

from quell.accounts import logins
from quell.accounts import services as accounts
from quell.accounts.models import LoginFailure, User
from quell.lib.errors import Forbidden, Invalid, NotFound
from tests.conftest import World
from tests.web.test_login import count_password_checks, post_at_once

OLD = "pw-for-tests"
NEW = "a fresh long passphrase"


def can_log_in(email: str, password: str) -> bool:
    return authenticate(None, username=email, password=password) is not None


def password_hash(user: User) -> str:
    return User.objects.get(pk=user.pk).password


# --- Changing your own ----------------------------------------------------------------------------


def test_changing_your_password_lets_you_log_in_with_the_new_one_and_not_the_old(world: World) -> None:
    accounts.change_own_password(world.editor, OLD, NEW)

    assert can_log_in("editor@example.com", NEW)
    assert not can_log_in("editor@example.com", OLD)


def test_a_wrong_current_password_is_refused_changes_nothing_and_counts_as_a_failed_log_in(
    world: World,
) -> None:
    before = password_hash(world.editor)

    with pytest.raises(Invalid) as refused:
        accounts.change_own_password(world.editor, "not my password", NEW, ip="10.0.0.1")

    assert (refused.value.code, refused.value.field) == ("wrong_password", "currentPassword")
    assert password_hash(world.editor) == before
    assert LoginFailure.objects.filter(email="editor@example.com", ip="10.0.0.1").count() == 1


def test_wrong_current_passwords_lock_the_account_like_failed_log_ins(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        with pytest.raises(Invalid):
            accounts.change_own_password(world.editor, "a guess", NEW)

    with pytest.raises(logins.TooManyAttempts) as refused:
        accounts.change_own_password(world.editor, OLD, NEW)

    assert refused.value.status == 429
    assert refused.value.field == "currentPassword"
    assert "Try again in 15 minutes." in refused.value.message
    assert can_log_in("editor@example.com", OLD)
    assert logins.login_throttle("editor@example.com", None).blocked


def test_failed_log_ins_lock_the_change_too(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        logins.record_login_failure("editor@example.com", "10.0.0.9")

    with pytest.raises(logins.TooManyAttempts):
        accounts.change_own_password(world.editor, OLD, NEW)

    assert can_log_in("editor@example.com", OLD)


def test_a_weak_new_password_is_refused_with_the_validators_message(world: World) -> None:
    before = password_hash(world.editor)

    with pytest.raises(Invalid) as refused:
        accounts.change_own_password(world.editor, OLD, "short")

    assert (refused.value.code, refused.value.field) == ("weak_password", "newPassword")
    assert "This password is too short. It must contain at least 8 characters." in refused.value.message
    assert password_hash(world.editor) == before


def test_a_common_new_password_is_refused(world: World) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.change_own_password(world.editor, OLD, "password123")

    assert "This password is too common." in refused.value.message


def test_the_new_password_must_differ_from_the_current_one(world: World) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.change_own_password(world.editor, OLD, OLD)

    assert (refused.value.code, refused.value.field) == ("same_password", "newPassword")


def test_a_successful_change_forgets_the_earlier_failures(world: World) -> None:
    logins.record_login_failure("editor@example.com", None)

    accounts.change_own_password(world.editor, OLD, NEW)

    assert not LoginFailure.objects.filter(email="editor@example.com").exists()


# --- An admin sets one ----------------------------------------------------------------------------


def test_an_admin_sets_a_new_password_for_someone_who_lost_theirs(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        logins.record_login_failure("viewer@example.com", None)

    accounts.set_password(world.viewer.pk, NEW, by=world.admin)

    assert can_log_in("viewer@example.com", NEW)
    assert not can_log_in("viewer@example.com", OLD)
    # The lockout they ran into guessing is lifted, so the new password works at once.
    assert not logins.login_throttle("viewer@example.com", None).blocked


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_set_someone_elses_password(world: World, role: str) -> None:
    before = password_hash(world.viewer)

    with pytest.raises(Forbidden):
        accounts.set_password(world.viewer.pk, NEW, by=world.user(role))

    assert password_hash(world.viewer) == before


def test_a_weak_password_set_by_an_admin_is_refused_and_nothing_changes(world: World) -> None:
    before = password_hash(world.viewer)

    with pytest.raises(Invalid) as refused:
        accounts.set_password(world.viewer.pk, "12345678", by=world.admin)

    assert (refused.value.code, refused.value.field) == ("weak_password", "newPassword")
    assert "This password is too common." in refused.value.message
    assert password_hash(world.viewer) == before


def test_setting_the_password_of_nobody_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        accounts.set_password(999_999, NEW, by=world.admin)


def test_a_deactivated_user_may_get_a_password_but_logs_in_only_once_reactivated(world: World) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)

    accounts.set_password(world.viewer.pk, NEW, by=world.admin)

    assert not can_log_in("viewer@example.com", NEW)
    accounts.set_user_active(world.viewer.pk, True, by=world.admin)
    assert can_log_in("viewer@example.com", NEW)


# --- API ------------------------------------------------------------------------------------------


def basic(world: World, name: str) -> dict[str, str]:
    key_id, secret = world.keys[name]
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def change_by_api(client: Client, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post("/api/v1/users/me/password", body, content_type="application/json", headers=headers)


def test_the_api_changes_your_own_password_with_an_api_key(world: World) -> None:
    response = change_by_api(Client(), {"currentPassword": OLD, "newPassword": NEW}, basic(world, "viewer"))

    assert response.status_code == 204
    assert can_log_in("viewer@example.com", NEW)
    assert not can_log_in("viewer@example.com", OLD)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        # What the schema states (a length, a field required) is a 400 `invalid_request`; what depends
        # on the account or on Django's validators (the current password, a common one) a 400 with
        # the rule's own code, which the operation's description names.
        ({"currentPassword": "a guess", "newPassword": NEW}, 400, "wrong_password", "currentPassword"),
        ({"currentPassword": OLD, "newPassword": "password1234"}, 400, "weak_password", "newPassword"),
        ({"currentPassword": OLD, "newPassword": OLD}, 400, "same_password", "newPassword"),
        ({"currentPassword": OLD, "newPassword": "short"}, 400, "invalid_request", None),
        ({"currentPassword": OLD}, 400, "invalid_request", None),
        ({"currentPassword": OLD, "newPassword": "x" * 4097}, 400, "invalid_request", None),
    ],
)
def test_the_api_refuses_a_bad_change_with_a_code_and_changes_nothing(
    world: World, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    before = password_hash(world.viewer)

    response = change_by_api(Client(), body, basic(world, "viewer"))

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json().get("field") == field
    assert response.json()["message"]
    assert password_hash(world.viewer) == before


def test_the_api_answers_429_once_the_account_is_locked(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        change_by_api(Client(), {"currentPassword": "a guess", "newPassword": NEW}, basic(world, "viewer"))

    response = change_by_api(Client(), {"currentPassword": OLD, "newPassword": NEW}, basic(world, "viewer"))

    assert response.status_code == 429
    assert response.json()["code"] == "too_many_attempts"
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert can_log_in("viewer@example.com", OLD)


def test_behind_the_proxy_the_api_counts_a_wrong_password_against_the_client(
    world: World, settings: LazySettings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]  # the test client's peer is 127.0.0.1
    through_proxy = {**basic(world, "viewer"), "X-Forwarded-For": "203.0.113.7"}

    change_by_api(Client(), {"currentPassword": "a guess", "newPassword": NEW}, through_proxy)

    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["203.0.113.7"]


def test_behind_the_proxy_a_locked_out_address_does_not_lock_the_api_for_other_clients(
    world: World, settings: LazySettings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    for n in range(logins.LOGIN_FAILURES_PER_IP):
        logins.record_login_failure(f"guess{n}@example.com", "203.0.113.7")
    body = {"currentPassword": OLD, "newPassword": NEW}

    locked = change_by_api(Client(), body, {**basic(world, "viewer"), "X-Forwarded-For": "203.0.113.7"})
    other = change_by_api(Client(), body, {**basic(world, "viewer"), "X-Forwarded-For": "198.51.100.2"})

    assert (locked.status_code, other.status_code) == (429, 204)


def test_wrong_current_passwords_at_once_reach_at_most_five_password_checks(
    live_server: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_password_checks(monkeypatch)
    guesses = [json.dumps({"currentPassword": f"guess {n}", "newPassword": NEW}).encode() for n in range(40)]

    codes = post_at_once(
        live_server.url,
        "/api/v1/users/me/password",
        guesses,
        {"Content-Type": "application/json", **basic(world, "viewer")},
    )

    assert set(codes) <= {400, 429}, codes
    assert len(checked) == codes.count(400) <= logins.LOGIN_FAILURES_PER_EMAIL, codes
    assert can_log_in("viewer@example.com", OLD)


def test_the_api_needs_credentials(world: World) -> None:
    response = change_by_api(Client(), {"currentPassword": OLD, "newPassword": NEW})

    assert response.status_code == 401
    assert can_log_in("viewer@example.com", OLD)


def test_a_browser_session_changing_its_password_through_the_api_stays_signed_in(world: World) -> None:
    this, other = Client(), Client()
    this.force_login(world.viewer)
    other.force_login(world.viewer)

    response = change_by_api(this, {"currentPassword": OLD, "newPassword": NEW})

    assert response.status_code == 204
    assert this.get("/api/v1/test-login").status_code == 200
    assert other.get("/api/v1/test-login").status_code == 401


# --- quell setpassword ----------------------------------------------------------------------------


def test_setpassword_reads_the_password_from_stdin(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW + "\n"))
    out = io.StringIO()

    call_command("setpassword", "--email", "Alice@Example.com", "--password-stdin", stdout=out)

    assert "alice@example.com has a new password." in out.getvalue()
    assert can_log_in("alice@example.com", NEW)
    assert not can_log_in("alice@example.com", OLD)


def test_setpassword_prompts_twice(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return NEW

    monkeypatch.setattr("getpass.getpass", answer)

    call_command("setpassword", "--email", "alice@example.com", stdout=io.StringIO())

    assert prompts == ["New password: ", "New password again: "]
    assert can_log_in("alice@example.com", NEW)


def test_setpassword_refuses_two_different_answers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([NEW, NEW + "!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match="The two passwords differ"):
        call_command("setpassword", "--email", "alice@example.com")

    assert can_log_in("alice@example.com", OLD)


@pytest.mark.parametrize(
    ("email", "stdin", "message"),
    [
        ("alice@example.com", "short\n", "This password is too short"),
        ("alice@example.com", "", "No password on standard input."),
        ("nobody@example.com", NEW + "\n", "There is no user nobody@example.com."),
    ],
)
def test_setpassword_refuses_clearly_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, email: str, stdin: str, message: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))

    with pytest.raises(CommandError, match=message):
        call_command("setpassword", "--email", email, "--password-stdin")

    assert can_log_in("alice@example.com", OLD)


def test_setpassword_says_when_the_user_is_deactivated(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW + "\n"))
    out = io.StringIO()

    call_command("setpassword", "--email", "viewer@example.com", "--password-stdin", stdout=out)

    assert "They are deactivated" in out.getvalue()


# --- Like the email or the name -------------------------------------------------------------------

SIMILAR = "The password is too similar to the email."


def test_a_new_users_password_like_their_email_or_name_is_refused_and_nobody_is_created(world: World) -> None:
    # The user does not exist yet: the validator compares with the email and name being given.
    for password, name, said in [
        ("nina@example.com", "", SIMILAR),
        ("Nina@Example.com", "", SIMILAR),
        ("ninakowalski", "Nina Kowalski", "The password is too similar to the name."),
    ]:
        with pytest.raises(Invalid) as refused:
            accounts.create_user(by=world.admin, email="nina@example.com", name=name, password=password)

        assert (refused.value.code, refused.value.field) == ("weak_password", "password")
        assert said in refused.value.message
    assert not User.objects.filter(email="nina@example.com").exists()


def test_the_api_refuses_a_new_user_whose_password_is_their_email(world: World) -> None:
    response = Client().post(
        "/api/v1/users",
        {"email": "nina@example.com", "password": "nina@example.com"},
        content_type="application/json",
        headers=basic(world, "admin"),
    )

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("weak_password", "password")
    assert SIMILAR in response.json()["message"]
    assert not User.objects.filter(email="nina@example.com").exists()


def test_changing_your_password_to_your_email_is_refused_by_the_api(world: World) -> None:
    body = {"currentPassword": OLD, "newPassword": "viewer@example.com"}

    response = change_by_api(Client(), body, basic(world, "viewer"))

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("weak_password", "newPassword")
    assert SIMILAR in response.json()["message"]
    assert can_log_in("viewer@example.com", OLD)


def test_an_admin_cannot_set_a_password_equal_to_the_users_email(world: World) -> None:
    with pytest.raises(Invalid, match=SIMILAR):
        accounts.set_password(world.viewer.pk, "viewer@example.com", by=world.admin)

    assert can_log_in("viewer@example.com", OLD)


def test_setpassword_refuses_the_users_email_as_password(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("alice@example.com\n"))

    with pytest.raises(CommandError, match=SIMILAR):
        call_command("setpassword", "--email", "alice@example.com", "--password-stdin")

    assert can_log_in("alice@example.com", OLD)


@pytest.mark.parametrize("email", ["root@example.com", "viewer@example.com"], ids=["new", "existing"])
def test_createadmin_refuses_the_email_as_password(world: World, email: str) -> None:
    with pytest.raises(CommandError, match=SIMILAR):
        call_command("createadmin", "--email", email, "--password", email, stdout=io.StringIO())

    assert not User.objects.filter(email=email, global_role="admin").exists()
