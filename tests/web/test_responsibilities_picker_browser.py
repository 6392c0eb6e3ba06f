"""The Responsibilities page's "User or group" search in a real browser: typing swaps in the matches, no reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from quell.accounts.models import Responsibility
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page, screenshot
from tests.web.test_responsibilities_picker import (
    PEOPLE,
    Crowd,
    crowd,  # noqa: F401  (a fixture: more people and groups than a plain select lists)
    person,
)

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_a_manager_finds_a_person_by_typing_and_gives_them_a_role(
    live_server: object,
    world: World,
    crowd: Crowd,  # noqa: F811
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    late = crowd.people[-1]
    late_pk, late_name, late_label = late.pk, late.name, person(PEOPLE - 1)
    orders_id = world.orders.pk

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "manager@example.com")
        page.goto(f"{base}/datasets/{orders_id}/responsibilities")
        principal = page.locator("#new-principal")
        expect(principal.locator("option", has_text=late_label)).to_have_count(0)
        expect(principal.locator("option", has_text="type to narrow")).to_have_count(1)
        page.evaluate("window.quellNotReloaded = true")

        with page.expect_response(lambda response: "/responsibilities/principals" in response.url):
            page.get_by_label("Search for a user or group").press_sequentially(f"person {PEOPLE - 1}")

        # "Nobody new" and the one match.
        expect(principal.locator("option")).to_have_count(2)
        expect(principal.locator("option", has_text=late_label)).to_have_count(1)
        assert page.evaluate("window.quellNotReloaded") is True
        screenshot(page, "responsibilities-search")

        principal.select_option(label=late_label)
        page.locator("#new-role").select_option(label="Editor")
        page.get_by_role("button", name="Save responsibilities").click()

        expect(page.get_by_text("Saved the responsibilities.")).to_be_visible()
        expect(page.locator("table tbody")).to_contain_text(late_name)
        expect(page.locator(f'#new-principal option[value="user:{late_pk}"]')).to_have_count(0)

    assert Responsibility.objects.get(dataset_id=orders_id, user_id=late_pk).role.name == "Editor"
