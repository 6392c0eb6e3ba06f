"""The user journey in a real browser: Playwright driving Debian's Chromium against the live server.

Data is set up with the ORM before the browser starts, and checked after it stops: Playwright's sync
API runs an event loop in this thread, inside which Django refuses database calls.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from quell.incidents import services as incidents
from quell.incidents.models import EventKind, Incident
from tests.conftest import World
from tests.web.conftest import day, push_at

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The journey refreshes docs/screenshots only when asked (QUELL_SCREENSHOTS=1), so a test run leaves
# the work tree clean; otherwise the pictures go to a temporary directory and are still taken, so a
# page that cannot render fails either way.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("QUELL_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "quell-screenshots"
)
PASSWORD = "pw-for-tests"

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed: apt-get install chromium"
)
pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.set_default_timeout(10_000)
    return page


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="What needs attention")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def choose(page: Page, label: str, option: str) -> None:
    """Pick a filter and wait for htmx to swap in the list and put the filter in the URL."""
    with page.expect_response(
        lambda response: "/incidents" in response.url and response.request.method == "GET"
    ):
        page.get_by_label(label, exact=True).select_option(label=option)


def listed_titles(page: Page) -> list[str]:
    return page.locator("#incident-list table.incidents tbody td.title a").all_inner_texts()


def test_an_editor_creates_finds_filters_and_resolves_an_incident(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    (second_fail,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    check_id = world.orders_fail.check_ref_id
    first_fail_id, second_fail_id, freshness_id = world.orders_fail.pk, second_fail.pk, world.orders_fail_2.pk
    orders_id = world.orders.pk

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "editor@example.com")
        screenshot(page, "home")

        # The check page, and its context menu, by keyboard.
        page.goto(f"{base}/checks/{check_id}")
        expect(page.get_by_role("heading", name="row_count > 0")).to_be_visible()
        expect(page.locator("figure.chart")).to_be_visible()
        page.locator("#check-menu summary").focus()
        page.keyboard.press("Enter")
        menu_item = page.get_by_role("link", name="Create Incident")
        expect(menu_item).to_be_visible()
        menu_item.focus()
        page.keyboard.press("Enter")

        dialog = page.locator("dialog#create-incident")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#create-incident-form")).to_be_visible()  # loaded as the dialog opens
        dialog.get_by_label("Name").fill("Orders table is empty")
        dialog.get_by_label("Description").fill("The nightly load wrote no rows two days running.")
        dialog.get_by_label("Severity").select_option("critical")
        dialog.locator(f"#result-{first_fail_id}").check()
        dialog.locator(f"#result-{second_fail_id}").check()
        screenshot(page, "create-incident")
        dialog.get_by_role("button", name="Save").click()

        page.wait_for_url(re.compile(r"/incidents/\d+$"))
        number = int(page.url.rsplit("/", 1)[1])
        expect(page.locator("h1")).to_contain_text("Orders table is empty")
        expect(page.locator("#results tbody tr")).to_have_count(2)

        # On the dataset's Incidents tab.
        page.get_by_role("link", name="warehouse/orders").first.click()
        page.get_by_role("link", name="Incidents", exact=True).last.click()
        expect(page).to_have_url(re.compile(rf"/datasets/{orders_id}/incidents"))
        expect(page.locator("#incident-list")).to_contain_text("Orders table is empty")
        choose(page, "Severity", "Critical")
        expect(page).to_have_url(re.compile("severity=critical"))
        assert listed_titles(page) == ["Orders table is empty"]
        screenshot(page, "dataset-incidents")

        # On the Incidents page, through every filter and the title search.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
        expect(page.get_by_role("heading", name="Incidents", exact=True)).to_be_visible()
        assert listed_titles(page) == ["Orders table is empty"]
        choose(page, "Lead", "Editor")
        choose(page, "Status", "Reported")
        choose(page, "Reporter", "Editor")
        choose(page, "Severity", "Critical")
        for chosen in (r"lead=\d+", "status=reported", r"reporter=\d+", "severity=critical"):
            expect(page).to_have_url(re.compile(chosen))
        assert listed_titles(page) == ["Orders table is empty"]
        choose(page, "Severity", "Minor")
        expect(page.locator("#incident-list")).to_contain_text("No incident matches these filters.")
        page.get_by_role("link", name="Clear filters").click()
        with page.expect_response(lambda response: "q=" in response.url):
            page.get_by_label("Title", exact=True).fill("table empty")
            page.get_by_label("Title", exact=True).press("Enter")
        assert listed_titles(page) == ["Orders table is empty"]
        page.reload()  # the filters live in the URL
        expect(page.get_by_label("Title", exact=True)).to_have_value("table empty")
        assert listed_titles(page) == ["Orders table is empty"]
        screenshot(page, "incidents")

        # The incident page: assign a lead, move through the statuses, resolve.
        page.get_by_role("link", name="Orders table is empty").click()
        expect(page).to_have_url(re.compile(rf"/incidents/{number}$"))
        edit = page.locator("#edit-form")
        edit.get_by_label("Lead").select_option(label="Manager")
        edit.get_by_role("button", name="Save").click()
        expect(page.locator("#fact-lead")).to_have_text("Manager")
        for status in ("Investigating", "Fixing"):
            edit.get_by_label("Status").select_option(label=status)
            edit.get_by_role("button", name="Save").click()
            expect(page.locator(".page-head .badges")).to_contain_text(status)

        edit.get_by_label("Status").select_option(label="Resolved")
        edit.get_by_role("button", name="Save").click()
        error = page.locator("#id_resolution_notes_error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("A resolution note is required to resolve an incident")
        expect(page.locator("#id_resolution_reason_error")).to_contain_text("Choose why it is resolved.")
        expect(page.locator(".page-head .badges")).to_contain_text("Fixing")
        screenshot(page, "resolve-refused")

        edit.get_by_label("Resolution reason").select_option(label="Fixed")
        edit.get_by_label("Resolution note").fill("Reran the export after the disk was freed.")
        edit.get_by_role("button", name="Save").click()
        expect(page.locator(".page-head .badges")).to_contain_text("Resolved")
        expect(page.locator("#fact-reason")).to_have_text("Fixed")
        expect(page.locator("#fact-resolution")).to_have_text("Reran the export after the disk was freed.")

        # Include one more result, found with the picker's search.
        page.get_by_text("Include more check results").click()
        with page.expect_response(lambda response: "/results/picker" in response.url):
            page.get_by_label("Search by check name").fill("freshness")
        expect(page.locator(f"#attach-{first_fail_id}")).to_have_count(0)
        page.locator(f"#attach-{freshness_id}").check()
        page.get_by_role("button", name="Include selected results").click()
        expect(page.locator("#results tbody tr")).to_have_count(3)

        page.get_by_label("Comment").fill("Added a disk-space alert so this does not recur.")
        page.get_by_role("button", name="Comment").click()

        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("created the incident")
        expect(timeline).to_contain_text("made Manager the lead (was Editor)")
        expect(timeline).to_contain_text("wrote the resolution note:")
        expect(timeline).to_contain_text("gave the resolution reason Fixed")
        expect(timeline).to_contain_text("Added a disk-space alert")
        assert timeline.get_by_text("changed the status from").count() == 3
        assert timeline.get_by_text("included the check result").count() == 3
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "incident")

    incident = Incident.objects.get(number=number)
    assert incident.status == "resolved"
    assert incident.lead == world.manager
    assert incident.reporter == world.editor
    assert set(incident.check_results.values_list("pk", flat=True)) == {
        first_fail_id,
        second_fail_id,
        freshness_id,
    }
    assert incident.timeline.filter(kind=EventKind.COMMENT).count() == 1


def test_a_viewer_sees_no_create_incident_and_no_edit_controls(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    check_id = world.orders_fail.check_ref_id

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "viewer@example.com")
        page.goto(f"{base}/checks/{check_id}")
        page.locator("#check-menu summary").click()
        expect(page.get_by_role("link", name="Incidents of orders")).to_be_visible()
        expect(page.get_by_text("Create Incident")).to_have_count(0)

        page.goto(f"{base}/incidents/{incident.number}")
        expect(page.locator("h1")).to_contain_text("Orders table is empty")
        expect(page.locator("ol.timeline")).to_contain_text("created the incident")
        for control in ("#edit-form", "#attach-form", ".comment-form"):
            expect(page.locator(control)).to_have_count(0)
        expect(page.get_by_role("button", name="Save")).to_have_count(0)
        screenshot(page, "incident-as-viewer")


def test_someone_without_access_to_the_dataset_sees_none_of_it(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    urls = [
        f"/checks/{world.orders_fail.check_ref_id}",
        f"/datasets/{world.orders.pk}",
        f"/datasets/{world.orders.pk}/incidents",
        f"/incidents/{incident.number}",
    ]

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "outsider@example.com")
        for url in urls:
            response = page.goto(base + url)
            assert response is not None
            assert response.status == 404, url
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            content = page.content()
            assert "Orders table is empty" not in content
            assert "row_count" not in content
            assert "orders" not in content
        page.goto(f"{base}/incidents/")
        expect(page.locator("#incident-list")).to_contain_text("No incidents yet.")


def test_an_admin_finds_the_settings(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, base, "alice@example.com")
        page.get_by_role("link", name="Settings").click()
        page.get_by_role("link", name="Dataset roles").click()
        expect(page.get_by_role("row", name=re.compile("Manage incidents"))).to_be_visible()
        screenshot(page, "settings-roles")
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("cell", name="viewer@example.com")).to_be_visible()
        page.goto(f"{base}/datasets/")
        screenshot(page, "datasets")
