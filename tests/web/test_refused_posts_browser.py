"""A refused form post in Debian's Chromium: reloading the page, or going Back to it, shows the form with
its error or the incident page, never a blank error page."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_reloading_after_resolving_without_a_note_is_refused_shows_the_incident(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    number = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    ).number
    httpx.get(f"{base}/login/", timeout=120)  # the first request loads the URLconf, slow on a busy machine

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/incidents/{number}")
        edit = page.locator("#edit-form")
        edit.get_by_label("Status").select_option(label="Resolved")
        edit.get_by_role("button", name="Save").click()
        expect(page.locator("#id_resolution_notes_error")).to_contain_text("A resolution note is required")
        expect(page).to_have_url(re.compile(rf"/incidents/{number}$"))  # the page's own address

        reloaded = page.reload()

        assert reloaded is not None
        assert (reloaded.request.method, reloaded.status) == ("GET", 200)
        expect(page.locator("h1")).to_contain_text("Orders table is empty")
        expect(page.locator("#edit-form")).to_be_visible()

        page.goto(f"{base}/incidents/")
        back = page.go_back()

        assert back is not None
        assert back.status == 200
        expect(page.locator("h1")).to_contain_text("Orders table is empty")
        expect(page).to_have_url(re.compile(rf"/incidents/{number}"))


def test_without_scripts_a_reload_after_a_refusal_shows_the_form_with_its_error_and_the_url_the_page(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    number = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    ).number
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = browser.new_context(java_script_enabled=False).new_page()
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/incidents/{number}")
        edit = page.locator("#edit-form")
        edit.get_by_label("Status").select_option(label="Resolved")
        edit.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(rf"/incidents/{number}/edit$"))

        reloaded = page.reload()  # sends the form again

        assert reloaded is not None
        assert reloaded.status == 400
        expect(page.locator("#id_resolution_notes_error")).to_contain_text("A resolution note is required")

        opened = page.goto(f"{base}/incidents/{number}/edit")  # the address, opened again

        assert opened is not None
        assert opened.status == 200
        expect(page).to_have_url(re.compile(rf"/incidents/{number}#edit-form$"))
        expect(page.locator("h1")).to_contain_text("Orders table is empty")
