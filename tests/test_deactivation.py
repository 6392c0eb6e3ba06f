"""Deactivating a user revokes their API keys and Soda Core tokens for good; reactivating brings none back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import ApiKey, User
from tests.conftest import ClientFor, World


def soda_login(api: httpx.Client, key: tuple[str, str]) -> httpx.Response:
    return api.post("/api/command", json={"type": "login", "apiKeyId": key[0], "apiKeySecret": key[1]})


def who_am_i(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/api/query", json={"type": "whoAmI", "token": token})


@pytest.fixture
def soda(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def test_a_reactivated_users_old_api_key_and_soda_token_stay_refused(
    world: World, client_for: ClientFor, soda: httpx.Client
) -> None:
    api = client_for("viewer")
    assert api.get("/test-login").status_code == 200
    login = soda_login(soda, world.keys["viewer"])
    assert login.status_code == 200
    token = login.json()["token"]

    accounts.set_user_active(world.viewer.pk, False, by=world.admin)
    accounts.set_user_active(world.viewer.pk, True, by=world.admin)

    refused = api.get("/test-login")
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"
    assert who_am_i(soda, token).status_code == 401
    assert soda_login(soda, world.keys["viewer"]).status_code == 401
    assert all(key.revoked_at is not None for key in account_queries.list_api_keys(by=world.viewer))


def test_a_reactivated_user_makes_a_new_key_that_works(world: World, client_for: ClientFor) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)
    accounts.set_user_active(world.viewer.pk, True, by=world.admin)
    world.viewer.refresh_from_db()

    key, secret = accounts.create_api_key(user=world.viewer, name="after reactivation")
    world.keys["viewer"] = (key.key_id, secret)

    assert client_for("viewer").get("/test-login").json()["userEmail"] == "viewer@example.com"


def test_reactivating_someone_deactivated_before_keys_were_revoked_leaves_their_keys_revoked(
    world: World, client_for: ClientFor
) -> None:
    # Deactivated by an earlier Quell, which left the keys live (and usable again on reactivation).
    User.objects.filter(pk=world.viewer.pk).update(is_active=False)

    accounts.set_user_active(world.viewer.pk, True, by=world.admin)

    assert client_for("viewer").get("/test-login").status_code == 401


def test_createadmin_reactivating_an_admin_leaves_their_keys_revoked(world: World) -> None:
    User.objects.filter(pk=world.manager.pk).update(is_active=False)

    accounts.set_admin("manager@example.com", "a long passphrase for ops")

    assert not ApiKey.objects.filter(user=world.manager, revoked_at__isnull=True).exists()


def test_deactivating_revokes_no_one_elses_keys(world: World) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)

    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 4
