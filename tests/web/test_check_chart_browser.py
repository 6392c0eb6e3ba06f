"""The check page's chart in Debian's Chromium: full width, thresholds drawn, axes labelled; and the\nincident page's small chart of each linked check."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult
from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.conftest import day
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]

THRESHOLDS = {"fail": {"greaterThan": 1000.0}, "warn": {"greaterThan": 500.0}}


def max_amount(world: World, n: int, value: float) -> CheckResult:
    """Day n's result of `max(amount) warn when > 500 fail when > 1000` as Soda Core sends it."""
    outcome = "fail" if value > 1000 else "warn" if value > 500 else "pass"
    _, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=day(n),
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset="orders",
                    check=catalog_ingest.CheckInput(name="max(amount) warn when > 500 fail when > 1000"),
                    outcome=outcome,
                    value=value,
                    diagnostics={"value": value, **THRESHOLDS},
                )
            ],
        ),
        by=world.admin,
    )
    return result


def test_the_check_chart_fills_the_width_and_shows_thresholds_ticks_and_dates(
    live_server: object, world: World, tmp_path: Path
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    values = [320, 410, 380, 560, 470, 720, 650, 1180, 940, 860, 1320, 610]
    results = [max_amount(world, n, v) for n, v in enumerate(values, start=2)]
    url = f"{base}/checks/{results[0].check_ref_id}"
    incident = incidents.create_incident(
        by=world.editor, title="Amounts too high", check_result_ids=[results[-2].pk, world.orders_fail.pk]
    )

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, world.viewer.email)
        page.goto(url)

        figure = page.locator("figure.chart")
        expect(figure.locator("line.threshold-fail")).to_have_count(1)
        expect(figure.locator("line.threshold-warn")).to_have_count(1)
        expect(figure.locator("text.threshold-label")).to_have_text(["fail > 1,000", "warn > 500"])
        expect(figure.locator(".chart-caption")).to_have_text("12 results from 3 Nov to 14 Nov.")
        labels = figure.locator("text.axis-label").all_text_contents()
        svg_box = figure.locator("svg[role=img]").bounding_box()
        section_box = page.locator("section[aria-labelledby=chart-heading]").bounding_box()
        expect(figure.locator("line.threshold-fail")).to_have_attribute("x2", "944")  # across the plot
        page.locator("section[aria-labelledby=chart-heading]").screenshot(path=str(tmp_path / "check.png"))

        page.goto(f"{base}/incidents/{incident.number}")
        small = page.locator(".linked-charts figure.chart-small")
        expect(small).to_have_count(2)
        expect(small.first.locator("line.threshold-fail")).to_have_count(1)
        page.locator("#results").screenshot(path=str(tmp_path / "incident.png"))

    assert [label for label in labels if "Nov" not in label] == [f"{n:,}" for n in range(200, 1401, 200)]
    assert [label for label in labels if "Nov" in label] == [
        "4 Nov",
        "6 Nov",
        "8 Nov",
        "10 Nov",
        "12 Nov",
        "14 Nov",
    ]
    assert svg_box is not None
    assert section_box is not None
    assert svg_box["width"] >= 0.95 * section_box["width"]
    assert svg_box["height"] < 0.4 * svg_box["width"]
