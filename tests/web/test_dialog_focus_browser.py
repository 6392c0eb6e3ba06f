"""Closing a dialog, however it closes, puts keyboard focus back on the button that opened it (Chromium)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page
from tests.web.test_csp_browser import watch_for_violations

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def open_by_keyboard(page: Page) -> None:
    """Actions, then Create Incident, with the keyboard only; returns once the form has loaded."""
    page.locator("#check-menu summary").focus()
    page.keyboard.press("Enter")
    create = page.get_by_role("link", name="Create Incident")
    expect(create).to_be_visible()
    create.focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog#create-incident").get_by_label("Name")).to_be_focused()


@pytest.mark.parametrize("close", ["Escape", "Close", "Cancel"])
def test_closing_the_create_incident_dialog_returns_focus_to_the_actions_button(
    live_server: object, world: World, close: str
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)  # the first request loads the URLconf, slow on a busy machine

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        violations = watch_for_violations(page)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        dialog = page.locator("dialog#create-incident")

        for _ in range(2):  # and again, once the dialog has been opened before
            open_by_keyboard(page)
            if close == "Escape":
                page.keyboard.press("Escape")
            else:
                dialog.get_by_role("button", name=close).click()

            expect(dialog).to_be_hidden()
            expect(page.locator("#check-menu summary")).to_be_focused()
            expect(page.locator("#check-menu")).not_to_have_attribute("open", "")
        assert violations == []
