"""The check page's Create Incident dialog in Debian's Chromium: its form is loaded when the dialog opens,
a failed load says so and links to the form's own page, and a viewer's page has no dialog at all."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import day, push_at
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page
from tests.web.test_csp_browser import watch_for_violations

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def open_create_incident(page: Page) -> None:
    page.locator("#check-menu summary").click()
    page.get_by_role("link", name="Create Incident").click()


def test_opening_the_dialog_loads_the_form_and_saving_it_creates_the_incident(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    (second_fail,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)  # the first request loads the URLconf, slow on a busy machine

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        violations = watch_for_violations(page)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        dialog = page.locator("dialog#create-incident")
        expect(dialog.locator("[data-load]")).to_have_count(1)
        expect(page.locator("#create-incident-form")).to_have_count(0)

        with page.expect_response(lambda response: response.url.endswith("/create-incident")):
            open_create_incident(page)

        expect(dialog).to_be_visible()
        expect(dialog.locator("#create-incident-form")).to_be_visible()
        expect(dialog.locator("[data-load]")).to_have_count(0)
        expect(dialog.get_by_label("Name")).to_be_focused()
        dialog.get_by_label("Name").fill("Orders table is empty")
        dialog.get_by_label("Severity").select_option("critical")
        dialog.locator(f"#result-{second_fail.pk}").check()
        dialog.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/incidents/\d+$"))
        number = int(page.url.rsplit("/", 1)[1])
        assert violations == []

    incident = Incident.objects.get(number=number)
    assert incident.title == "Orders table is empty"
    assert incident.severity == "critical"
    assert incident.reporter == world.editor
    assert list(incident.check_results.all()) == [second_fail]


# A 4xx would be swapped in like a form with errors (see base.html's htmx-config) were it not refused.
@pytest.mark.parametrize("status", [403, 500])
def test_a_form_that_fails_to_load_is_explained_with_a_link_and_loads_when_opened_again(
    live_server: object, world: World, status: int
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    check_id = world.orders_fail.check_ref_id
    form_url = f"/checks/{check_id}/create-incident"
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        page.route(f"**{form_url}", lambda route: route.fulfill(status=status, body="<p>Refused</p>"))

        open_create_incident(page)

        dialog = page.locator("dialog#create-incident")
        alert = dialog.get_by_role("alert")
        expect(alert).to_contain_text("The form could not be loaded")
        expect(alert.get_by_role("link")).to_have_attribute("href", form_url)
        expect(dialog).not_to_contain_text("Refused")

        page.unroute(f"**{form_url}")
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_be_hidden()
        open_create_incident(page)

        expect(dialog.locator("#create-incident-form")).to_be_visible()
        expect(dialog.get_by_role("alert")).to_have_count(0)


def test_a_viewers_check_page_has_no_create_incident_dialog(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "viewer@example.com")
        page.goto(f"{base}/checks/{check_id}")
        page.locator("#check-menu summary").click()

        expect(page.get_by_role("link", name="Incidents of orders")).to_be_visible()
        expect(page.get_by_role("link", name="Create Incident")).to_have_count(0)
        expect(page.locator("dialog")).to_have_count(0)


def test_a_session_that_ended_shows_the_link_rather_than_the_log_in_page_in_the_dialog(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        page.context.clear_cookies()  # signed out elsewhere: the form's GET is sent to log in

        open_create_incident(page)

        dialog = page.locator("dialog#create-incident")
        expect(dialog.get_by_role("alert")).to_contain_text("The form could not be loaded")
        expect(dialog.get_by_label("Password")).to_have_count(0)
        dialog.get_by_role("link", name="open it on a page of its own").click()
        expect(page).to_have_url(re.compile(rf"/login/\?next=/checks/{check_id}/create-incident$"))
