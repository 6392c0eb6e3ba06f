"""Every main page fits a phone's 390 px width: no sideways scrolling of the page, nothing under the header.

Wide tables scroll inside their own box; the page itself never does.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, ViewportSize

from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]

PHONE = ViewportSize(width=390, height=844)
# Screenshots for a person to look at, named QUELL_PHONE_SCREENSHOTS + page + ".png"; none by default.
SHOTS = os.environ.get("QUELL_PHONE_SCREENSHOTS", "")


def fits(page: Page) -> dict[str, object]:
    """What the browser measures: the page's width, whether the header covers the first heading, and
    the first elements that reach past the screen's right edge (inside a scrolling box they may)."""
    measured = page.evaluate(
        """() => {
            const header = document.querySelector("header.top").getBoundingClientRect();
            const main = document.querySelector("main").getBoundingClientRect();
            const heading = document.querySelector("main h1, main h2").getBoundingClientRect();
            const hit = document.elementFromPoint(
                Math.min(heading.left + 5, window.innerWidth - 1), heading.top + heading.height / 2);
            return {
                width: document.documentElement.scrollWidth,
                headerBelowMain: header.bottom > main.top + 1,
                headingCovered: !(hit && hit.closest("main")),
                // What sticks out, to name in the failure.
                wide: [...document.querySelectorAll("body *")]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                    .slice(0, 8)
                    .map(e => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`),
            };
        }"""
    )
    assert isinstance(measured, dict)
    return measured


def test_every_main_page_fits_a_phone_without_sideways_scrolling(
    live_server: object, world: World, orders_incident: Incident
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    pages = {
        "home": "/",
        "incidents": "/incidents/",
        "incident": f"/incidents/{orders_incident.number}",
        "datasets": "/datasets/",
        "dataset": f"/datasets/{world.orders.pk}",
        "checks": "/checks/",
        "check": f"/checks/{world.orders_fail.check_ref_id}",
        "scan": f"/scans/{world.orders_fail.scan_id}",
        "settings": "/settings/",
        "settings-users": "/settings/users",
        "profile": "/profile/",
    }
    too_wide: dict[str, object] = {}
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.set_default_timeout(10_000)
        page.goto(f"{base}/login/")
        too_wide["login"] = fits(page)
        shoot(page, "login")
        log_in(page, base, "alice@example.com")
        for name, url in pages.items():
            page.goto(base + url)
            too_wide[name] = fits(page)
            shoot(page, name)
    wrong = {
        name: measured
        for name, measured in too_wide.items()
        if isinstance(measured, dict)
        and (measured["width"] > PHONE["width"] or measured["headerBelowMain"] or measured["headingCovered"])
    }
    assert wrong == {}


def shoot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=f"{SHOTS}{name}.png", full_page=True)
