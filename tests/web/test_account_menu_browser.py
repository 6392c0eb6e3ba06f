"""The account menu in a real browser: a visible "Account" button that leads to one's API keys."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_the_account_menu_leads_to_ones_api_keys_and_logs_out(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "viewer@example.com")
        account = page.get_by_role("navigation", name="Main").get_by_text("Account")
        expect(account).to_be_visible()
        expect(page.get_by_role("link", name="API keys")).to_be_hidden()
        account.click()
        if os.environ.get("QUELL_PHONE_SCREENSHOTS"):
            page.wait_for_timeout(500)
            page.screenshot(path=f"{os.environ['QUELL_PHONE_SCREENSHOTS']}account-menu.png")
        page.get_by_role("link", name="API keys").click()
        expect(page).to_have_url(re.compile(r"/profile/#api-keys$"))
        expect(page.get_by_role("heading", name="API keys")).to_be_in_viewport()

        page.get_by_role("navigation", name="Main").get_by_text("Account").click()
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/login/"))
