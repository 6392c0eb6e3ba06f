"""The lead filter's search box in a real browser: typing swaps in the matching people, no reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import World
from tests.web.test_browser_journey import (
    NEEDS_CHROMIUM,
    choose,
    chromium,
    listed_titles,
    log_in,
    new_page,
    screenshot,
)
from tests.web.test_large_pickers import (
    LEADS,
    Crowd,
    crowd,  # noqa: F401  (a fixture: more people and datasets than a plain select lists)
)

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_typing_in_the_lead_search_swaps_the_options_and_choosing_one_filters_the_list(
    live_server: object,
    world: World,
    crowd: Crowd,  # noqa: F811
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    late = crowd.people[LEADS - 1]
    late_pk, late_name = late.pk, late.name

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "alice@example.com")
        page.goto(f"{base}/incidents/")
        lead = page.locator("#f-lead")
        expect(lead.locator("option", has_text=late_name)).to_have_count(0)
        page.evaluate("window.quellNotReloaded = true")

        with page.expect_response(lambda response: "/incidents/pickers/lead" in response.url):
            page.get_by_label("Search people for the lead filter").press_sequentially(f"person {LEADS - 1}")

        # "Anyone", Alice (the caller) and the one match.
        expect(lead.locator("option")).to_have_count(3)
        expect(lead.locator("option", has_text=late_name)).to_have_count(1)
        assert page.evaluate("window.quellNotReloaded") is True
        screenshot(page, "incident-filters-search")

        choose(page, "Lead", late_name)
        expect(page).to_have_url(re.compile(rf"lead={late_pk}(&|$)"))
        expect(page.locator("#incident-list tbody tr")).to_have_count(1)
        assert listed_titles(page) == [f"Customers problem {LEADS - 1:03}"]
        assert page.evaluate("window.quellNotReloaded") is True


def test_an_admin_finds_a_lead_by_typing_and_saves_them_on_the_incident(
    live_server: object,
    world: World,
    crowd: Crowd,  # noqa: F811
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    number = crowd.incidents[0].number
    late_name = crowd.people[-1].name

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "alice@example.com")
        page.goto(f"{base}/incidents/{number}")
        lead = page.locator("#id_lead")
        expect(lead.locator("option", has_text=late_name)).to_have_count(0)

        with page.expect_response(lambda response: f"/incidents/{number}/leads" in response.url):
            page.get_by_label("Search for a lead").press_sequentially(late_name.lower())
        expect(lead.locator("option", has_text=late_name)).to_have_count(1)
        screenshot(page, "incident-lead-search")
        lead.select_option(label=late_name)
        page.get_by_role("button", name="Save").click()

        expect(page.locator("#fact-lead")).to_have_text(late_name)
