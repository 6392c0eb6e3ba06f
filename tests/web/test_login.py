"""Logging in and out through the web form, and the throttle on repeated failures."""

from __future__ import annotations

import datetime as dt
import http.client
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.conf import LazySettings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.utils import timezone

from quell.accounts import logins
from quell.accounts import services as accounts
from quell.accounts.models import LoginFailure
from tests.conftest import World

# deploy/nginx/quell.conf on the same machine: the peer is always loopback, the client is in X-Forwarded-For.
PROXY = "127.0.0.1"


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
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")

    response = log_in(Client(), "editor@example.com", "pw-for-tests")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "Too many failed log-ins. Try again in 15 minutes." in response.content.decode()


def test_the_lock_lifts_when_the_failures_are_old(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")
    LoginFailure.objects.update(at=timezone.now() - logins.LOGIN_WINDOW - dt.timedelta(seconds=1))

    response = log_in(Client(), "editor@example.com", "pw-for-tests")

    assert response.status_code == 302


def test_failures_for_one_account_do_not_lock_another(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL):
        log_in(Client(), "editor@example.com", "wrong")

    assert log_in(Client(), "viewer@example.com", "pw-for-tests").status_code == 302


def test_many_failures_from_one_address_lock_that_address(world: World) -> None:
    for n in range(logins.LOGIN_FAILURES_PER_IP):
        log_in(Client(), f"guess{n}@example.com", "wrong")

    response = log_in(Client(), "viewer@example.com", "pw-for-tests")

    assert response.status_code == 429


# --- Behind a reverse proxy ----------------------------------------------------------------------


@pytest.fixture
def behind_proxy(settings: LazySettings) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]  # as deploy/quell.env sets it


def through_proxy(client_address: str) -> Client:
    """A browser behind the nginx site, which overwrites X-Forwarded-For with the client's address."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_address)


def test_behind_the_proxy_one_clients_failures_lock_that_client_and_nobody_else(
    world: World, behind_proxy: None
) -> None:
    for n in range(logins.LOGIN_FAILURES_PER_IP):
        log_in(through_proxy("203.0.113.7"), f"guess{n}@example.com", "wrong")

    assert log_in(through_proxy("198.51.100.2"), "viewer@example.com", "pw-for-tests").status_code == 302
    assert log_in(through_proxy("203.0.113.7"), "editor@example.com", "pw-for-tests").status_code == 429


def test_behind_the_proxy_a_failure_is_recorded_with_the_clients_address(
    world: World, behind_proxy: None
) -> None:
    log_in(through_proxy("203.0.113.7"), "nobody@example.com", "wrong")

    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["203.0.113.7"]


def test_an_untrusted_peer_cannot_forward_its_way_out_of_its_own_lock(
    world: World, behind_proxy: None
) -> None:
    def from_peer(forwarded_for: str) -> Client:
        return Client(REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=forwarded_for)

    for n in range(logins.LOGIN_FAILURES_PER_IP):
        log_in(from_peer(f"198.51.100.{n}"), f"guess{n}@example.com", "wrong")

    response = log_in(from_peer("198.51.100.200"), "viewer@example.com", "pw-for-tests")

    assert response.status_code == 429
    assert set(LoginFailure.objects.values_list("ip", flat=True)) == {"192.0.2.66"}


# --- Simultaneous guesses -------------------------------------------------------------------------


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the live server compares with a stored hash, in this process and its threads."""
    checked: list[str] = []
    lock = threading.Lock()
    original = MD5PasswordHasher.verify

    def verify(self: MD5PasswordHasher, password: str, encoded: str) -> bool:
        with lock:
            checked.append(password)
        return original(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", verify)
    return checked


def post_at_once(url: str, path: str, bodies: list[bytes], headers: dict[str, str]) -> list[int]:
    """POST each body on a connection of its own, all released together; the answers' status codes.

    The connections are opened one by one beforehand: forty opened at once overflow the test server's
    listen backlog (ten) and some are reset before any request is read.
    """
    where = urllib.parse.urlsplit(url)
    connections = [http.client.HTTPConnection(where.hostname or "", where.port, timeout=60) for _ in bodies]
    for connection in connections:
        connection.connect()
    barrier = threading.Barrier(len(bodies))

    def send(connection: http.client.HTTPConnection, body: bytes) -> int:
        barrier.wait(timeout=30)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    try:
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            return list(pool.map(send, connections, bodies))
    finally:
        for connection in connections:
            connection.close()


def test_forty_wrong_passwords_at_once_reach_at_most_five_password_checks(
    live_server: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = httpx.get(f"{live_server.url}/login/", timeout=60).cookies["csrftoken"]
    checked = count_password_checks(monkeypatch)
    guesses = [
        urllib.parse.urlencode(
            {"email": "viewer@example.com", "password": f"guess {n}", "csrfmiddlewaretoken": token}
        ).encode()
        for n in range(40)
    ]

    codes = post_at_once(
        live_server.url,
        "/login/",
        guesses,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={token}"},
    )

    assert set(codes) <= {400, 429}, codes
    assert len(checked) == codes.count(400) <= logins.LOGIN_FAILURES_PER_EMAIL, codes
    # Each checked guess is one failure on record; the refused ones left none behind.
    assert LoginFailure.objects.filter(email="viewer@example.com").count() == len(checked)


def test_a_successful_log_in_forgets_earlier_failures(world: World) -> None:
    for _ in range(logins.LOGIN_FAILURES_PER_EMAIL - 1):
        log_in(Client(), "editor@example.com", "wrong")
    log_in(Client(), "editor@example.com", "pw-for-tests")

    assert not LoginFailure.objects.filter(email="editor@example.com").exists()


def test_logging_out_needs_a_post_and_ends_the_session(world: World) -> None:
    client = Client()
    client.force_login(world.editor)

    # A GET (the address typed, a link) goes home, still signed in.
    assert client.get("/logout/")["Location"] == "/"
    assert client.get("/").status_code == 200
    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_a_malformed_email_is_refused_at_the_field(world: World, email: str) -> None:
    response = log_in(Client(), email, "pw-for-tests")

    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
