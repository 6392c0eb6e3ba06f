"""Every settings page, the Integrations pages included, shows the same settings tabs with its own marked."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import World
from tests.integrations.conftest import add_webhook
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def tabs(page: Page) -> list[str]:
    return page.get_by_role("navigation", name="Settings").get_by_role("link").all_inner_texts()


def current_tab(page: Page) -> str:
    return page.get_by_role("navigation", name="Settings").locator('[aria-current="page"]').inner_text()


def test_the_integrations_pages_show_the_settings_tabs(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    webhook, _ = add_webhook(world, "https://hooks.example.com/quell")
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "alice@example.com")
        page.goto(f"{base}/settings/users")
        expected = tabs(page)
        assert "Integrations" in expected
        assert current_tab(page) == "Users"

        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Integrations").click()
        expect(page).to_have_url(f"{base}/settings/integrations/")
        assert tabs(page) == expected
        assert current_tab(page) == "Integrations"
        expect(page.get_by_role("heading", level=1)).to_have_text("Settings")

        for path, heading in (
            (f"/settings/integrations/{webhook.pk}", "Receiver"),
            ("/settings/integrations/new", "New integration"),
        ):
            page.goto(f"{base}{path}")
            assert tabs(page) == expected, path
            assert current_tab(page) == "Integrations", path
            expect(page.get_by_role("heading", level=2).first).to_have_text(heading)
            # Back to the list from a page under it.
            expect(
                page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Integrations")
            ).to_be_visible()
