"""Admins who create a group or a dataset role of one name at the same moment get one, and a refusal
next to the name for the others (on PostgreSQL the second INSERT waited for the first and then broke
the unique constraint: a 500)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial

import httpx
import pytest
from django.conf import settings
from django.test import Client

from quell.accounts.models import DatasetRole, UserGroup
from tests.conftest import World
from tests.test_concurrency import at_once

WRITERS = 6


@pytest.fixture
def admin_browsers(live_server: object, world: World) -> Iterator[list[httpx.Client]]:
    """WRITERS clients of the live server, each on its own connection, signed in as the admin."""
    session = Client()
    session.force_login(world.admin)
    cookie = session.cookies[settings.SESSION_COOKIE_NAME].value
    browsers = [
        httpx.Client(
            base_url=live_server.url,  # type: ignore[attr-defined]
            cookies={settings.SESSION_COOKIE_NAME: cookie},
            timeout=30,
        )
        for _ in range(WRITERS)
    ]
    yield browsers
    for browser in browsers:
        browser.close()


def form_posts(
    browsers: list[httpx.Client], path: str, data: dict[str, str]
) -> list[Callable[[], httpx.Response]]:
    """One post of the form at `path` per browser, each with the token its page gave it: ready to be sent together."""
    posts: list[Callable[[], httpx.Response]] = []
    for browser in browsers:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(path).text)
        assert token
        posts.append(partial(browser.post, path, data=data | {"csrfmiddlewaretoken": token.group(1)}))
    return posts


def test_of_parallel_creations_of_one_group_one_lands_and_the_others_are_told_the_name_is_taken(
    admin_browsers: list[httpx.Client],
) -> None:
    responses = at_once(form_posts(admin_browsers, "/settings/groups", {"name": "Data platform"}))

    assert sorted(r.status_code for r in responses) == [302] + [400] * (WRITERS - 1), [
        r.status_code for r in responses
    ]
    assert all(
        "There is already a group named Data platform." in r.text for r in responses if r.status_code == 400
    )
    assert UserGroup.objects.filter(name="Data platform").count() == 1


def test_of_parallel_creations_of_one_dataset_role_one_lands_and_the_others_are_told_the_name_is_taken(
    admin_browsers: list[httpx.Client],
) -> None:
    form = {"name": "Steward", "permissions": "view_dataset"}
    responses = at_once(form_posts(admin_browsers, "/settings/roles", form))

    assert sorted(r.status_code for r in responses) == [302] + [400] * (WRITERS - 1), [
        r.status_code for r in responses
    ]
    assert all("There is already a role named Steward." in r.text for r in responses if r.status_code == 400)
    assert DatasetRole.objects.filter(name="Steward").count() == 1
