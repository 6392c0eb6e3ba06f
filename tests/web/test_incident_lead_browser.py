"""An incident's lead in Debian's Chromium: the Lead pickers offer only people who can change the incident,
and a page that is read-only for its reader says why and whom to ask."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page
from tests.web.test_create_dialog_browser import open_create_incident

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]


def test_the_lead_pickers_offer_only_those_who_can_act_and_a_viewer_is_told_why_they_cannot(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    number = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    ).number
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)  # the first request loads the URLconf, slow on a busy machine

    with chromium() as browser:
        editor = new_page(browser)
        editor.set_default_timeout(30_000)
        log_in(editor, base, "editor@example.com")
        editor.goto(f"{base}/incidents/{number}")
        lead = editor.locator("#edit-form").get_by_label("Lead")
        expect(lead.locator("option")).to_have_text(["Editor", "Alice", "Manager"])
        expect(editor.locator("#edit-form")).to_contain_text(
            "People with Manage incidents on one of its datasets"
        )

        editor.goto(f"{base}/checks/{check_id}")
        open_create_incident(editor)
        dialog = editor.locator("dialog#create-incident")
        expect(dialog.get_by_label("Lead").locator("option")).to_have_text(["Alice", "Editor", "Manager"])

        viewer = browser.new_context().new_page()
        viewer.set_default_timeout(30_000)
        log_in(viewer, base, "viewer@example.com")
        viewer.goto(f"{base}/incidents/{number}")
        read_only = viewer.locator("#read-only")
        expect(read_only).to_be_visible()
        expect(read_only).to_contain_text(
            "You can view this incident but not change it: that needs Manage incidents on warehouse/orders."
        )
        expect(read_only).to_contain_text("Ask one of those who can: Alice, Editor, Manager.")
        expect(viewer.locator("#edit-form")).to_have_count(0)

        viewer.goto(f"{base}/checks/{check_id}")
        viewer.locator("#check-menu summary").click()
        expect(viewer.locator("#create-incident-refused")).to_have_text(
            "Creating an incident needs Manage incidents on warehouse/orders"
        )
