"""An incident's timeline reads as a timeline in Chromium: a line with a mark per event and its time above
it, not a numbered list."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_the_timeline_is_a_line_of_marked_events_without_numbers(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    incidents.add_comment(incident.pk, "Looking at the load job.", by=world.editor)
    incidents.update_incident(incident.pk, by=world.editor, status="investigating")
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "viewer@example.com")
        page.goto(f"{base}/incidents/{incident.number}")
        timeline = page.locator("#timeline ol.timeline")
        events = timeline.locator(":scope > li")
        expect(events).to_have_count(4)

        looks = timeline.evaluate(
            """(list) => {
              const style = getComputedStyle(list);
              return {
                listStyle: style.listStyleType,
                line: style.borderLeftStyle !== "none" && parseFloat(style.borderLeftWidth) > 0,
                events: [...list.children].map((li) => ({
                  listStyle: getComputedStyle(li).listStyleType,
                  mark: getComputedStyle(li, "::before").content,
                  timeOnItsOwnLine: getComputedStyle(li.querySelector("time")).display === "block",
                })),
              };
            }"""
        )
        assert looks["listStyle"] == "none"
        assert looks["line"], "the events hang on a line"
        for event in looks["events"]:
            assert event["listStyle"] == "none", event
            assert event["mark"] not in ("none", "normal"), event
            assert event["timeOnItsOwnLine"], event
        # Oldest first, as the events happened.
        expect(events.first).to_contain_text("created the incident")
        expect(events.last).to_contain_text("changed the status from")
