"""A group's "Add people" box in a real browser: typing swaps in the matching people, no reload, and
saving adds the ticked ones, including one ticked before the search."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page, screenshot
from tests.web.test_group_members_at_scale import (
    Crowd,
    crowd,  # noqa: F401  (a fixture: more people than a plain list shows, and an empty group)
    members_of,
)

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_an_admin_finds_people_by_typing_ticks_them_and_saves_them_as_members(
    live_server: object,
    world: World,
    crowd: Crowd,  # noqa: F811
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    group_pk = crowd.group.pk
    early, late = crowd.people[0], crowd.people[120]
    early_name, late_name = early.name, late.name

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "alice@example.com")
        page.goto(f"{base}/settings/groups/{group_pk}")
        candidates = page.locator("#add-candidates")
        expect(candidates.get_by_label(late_name)).to_have_count(0)
        candidates.get_by_label(early_name).check()
        page.evaluate("window.quellNotReloaded = true")

        with page.expect_response(lambda response: f"/settings/groups/{group_pk}/candidates" in response.url):
            page.get_by_label("Search people to add").press_sequentially("person 120")

        # The one match, and the person ticked before the search, still ticked.
        expect(candidates.locator('input[name="add"]')).to_have_count(2)
        expect(candidates.get_by_label(early_name)).to_be_checked()
        assert page.evaluate("window.quellNotReloaded") is True
        screenshot(page, "group-add-people-search")
        candidates.get_by_label(late_name).check()
        page.get_by_role("button", name="Save members").click()

        expect(page.get_by_text("Saved the members.")).to_be_visible()
        members = page.locator("table tbody td:first-child")
        expect(members).to_have_count(2)
        expect(members.nth(0)).to_contain_text(early_name)
        expect(members.nth(1)).to_contain_text(late_name)

    assert members_of(crowd.group) == {early.pk, late.pk}
