"""Scans in a real browser: from the datasets list to a data source, a scan, a result and its failed rows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from quell.catalog.models import Dataset
from tests.conftest import World
from tests.web.conftest import missing_customers, push_soda_3, push_soda_4
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page, screenshot

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_a_viewer_follows_a_soda_scan_to_the_rows_that_failed(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    scan = push_soda_3(world)
    result_id = missing_customers(scan).pk
    push_soda_4(world)
    crm_id = Dataset.objects.get(data_source__name="crm4").pk

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "viewer@example.com")

        page.goto(f"{base}/datasets/")
        page.get_by_role("link", name="warehouse").first.click()
        expect(page.get_by_role("heading", name="warehouse")).to_be_visible()
        page.get_by_role("navigation", name="Data source").get_by_role("link", name="Scans").click()
        page.get_by_role("link", name=f"#{scan.pk} Soda Core CLI").click()

        expect(page.get_by_role("heading", name=f"Scan #{scan.pk}")).to_be_visible()
        expect(page.locator(".badges")).to_contain_text("Completed with failures")
        expect(page.locator("table.logs")).to_contain_text("Soda Core 3.5.6")
        screenshot(page, "scan")

        page.get_by_role("link", name="Details of No missing customers").click()
        expect(page).to_have_url(f"{base}/results/{result_id}")
        rows = page.locator("table.failed-rows")
        expect(rows.locator("thead")).to_contain_text("customer_id")
        expect(rows.locator("tbody tr")).to_have_count(2)
        expect(rows).to_contain_text("lost_in_transit")
        expect(page.locator("pre.diagnostics-json")).to_contain_text('"failedRowsAnalysis"')
        page.get_by_role("heading", name="Failed rows").scroll_into_view_if_needed()
        screenshot(page, "check-result")

        page.goto(f"{base}/datasets/{crm_id}")
        expect(page.get_by_role("heading", name="Data contract")).to_be_visible()
        expect(page.locator("pre.contract-text")).to_contain_text("dataset: crm4/main/customers")
        page.get_by_role("heading", name="Data contract").scroll_into_view_if_needed()
        screenshot(page, "dataset-contract")
