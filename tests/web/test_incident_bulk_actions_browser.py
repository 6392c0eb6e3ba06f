"""The bulk form in Chromium: "All on this page" ticks every row, unticking a row unticks it, and the
answer lists what changed and what was refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_ticking_all_on_the_page_then_setting_the_severity(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    empty = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    customers = incidents.create_incident(
        by=world.admin, title="Too few customers", check_result_ids=[world.customers_fail.pk]
    )
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/incidents/")
        rows = page.locator('input[name="incident"]')
        expect(rows).to_have_count(2)

        page.get_by_label("All on this page").check()
        for index in range(2):
            expect(rows.nth(index)).to_be_checked()
        rows.first.uncheck()
        expect(page.get_by_label("All on this page")).not_to_be_checked()
        page.get_by_label("All on this page").check()
        page.locator("#bulk-severity").select_option("critical")
        page.get_by_role("button", name="Set severity").click()

        expect(page.locator(".notice-success")).to_have_text(f"Changed 1 incident: #{empty.number}.")
        expect(page.locator(".notice-error")).to_contain_text(f"#{customers.number} not changed: You need")
        assert page.url == f"{base}/incidents/"
    assert Incident.objects.get(pk=empty.pk).severity == "critical"
    assert Incident.objects.get(pk=customers.pk).severity == "major"
