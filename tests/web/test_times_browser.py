"""Times in a real browser in Berlin: after the first page every time is Berlin's, the zone is named,
hovering gives the exact moment, recent ones read "… ago" and stay true while the page stays open, and
a zone chosen on the profile takes over."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from quell.accounts.models import User
from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.test_browser_journey import chromium, log_in, pytestmark  # noqa: F401

# The orders incident's failing result has the data time T0, 2026-11-01 06:00 UTC: 07:00 in Berlin.
T0_IN_BERLIN = "2026-11-01T07:00:00+01:00"


def test_times_follow_the_browsers_zone_name_it_and_give_the_exact_moment_on_hover(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    incidents.add_comment(incident.pk, "Looking at the load job.", by=world.editor)
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        context = browser.new_context(timezone_id="Europe/Berlin", viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(30_000)
        # The log-in page is the first: quell.js tells the server the browser's zone from there on.
        log_in(page, base, "editor@example.com")
        assert {"name": "quell_tz", "value": "Europe/Berlin"}.items() <= next(
            c for c in context.cookies() if c["name"] == "quell_tz"
        ).items()
        page.clock.install()
        page.goto(f"{base}/incidents/{incident.number}")

        expect(page.locator(".page-foot")).to_contain_text(re.compile(r"Times in Europe/Berlin \(CES?T\)"))
        # The data time of the linked result, where recency matters: relative, exact on hover.
        data_time = page.locator(f'#results table time[datetime="{T0_IN_BERLIN}"]')
        expect(data_time).to_have_attribute("title", "2026-11-01 07:00:00 CET")
        expect(data_time).to_have_attribute("data-ago", "")
        data_time.hover()
        # Where the exact moment matters, the moment itself, as the browser itself writes it in Berlin.
        created = page.locator("#facts-heading + dl time").first
        shown, berlin = created.evaluate(
            """(time) => [time.textContent, new Date(time.dateTime).toLocaleString("sv-SE", {timeZone: "Europe/Berlin"}).slice(0, 16)]"""
        )
        assert shown == berlin
        expect(created).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T$"))
        # The incident's age beside its status; the timeline's recent times read as how long ago.
        age = page.locator(".page-head .age")
        expect(age).to_have_text(re.compile(r"^open (< 1 min|1 min)$"))
        comment_time = page.locator("#timeline li.event-comment time")
        expect(comment_time).to_have_text(re.compile(r"^(just now|1 min ago)$"))

        # Left open, the page keeps them true: quell.js recounts each minute.
        page.clock.fast_forward("03:00")
        expect(comment_time).to_have_text(re.compile(r"^[34] min ago$"))
        expect(age).to_have_text(re.compile(r"^open [34] min$"))

        # The incidents list: ages beside the statuses, relative times with the exact moment on hover.
        page.goto(f"{base}/incidents/")
        row = page.locator("table.incidents tbody tr").first
        expect(row.locator(".age")).to_have_text(re.compile(r"^open \S"))
        expect(row.locator("time").first).to_have_attribute("title", re.compile(r" CES?T$"))

        # A zone chosen on the profile wins over the browser's.
        page.goto(f"{base}/profile/")
        zone = page.get_by_label("Show times in")
        expect(zone.locator("option:checked")).to_have_text("Your browser's zone (Europe/Berlin)")
        zone.select_option("Asia/Tokyo")
        page.get_by_role("button", name="Save time zone").click()
        expect(page.get_by_text("Times are now shown in Asia/Tokyo.")).to_be_visible()
        expect(page.locator(".page-foot")).to_contain_text("Times in Asia/Tokyo (JST)")
        page.goto(f"{base}/incidents/{incident.number}")
        expect(page.locator('#results table time[datetime="2026-11-01T15:00:00+09:00"]')).to_have_attribute(
            "title", "2026-11-01 15:00:00 JST"
        )
        context.close()

    assert User.objects.get(pk=world.editor.pk).time_zone == "Asia/Tokyo"
