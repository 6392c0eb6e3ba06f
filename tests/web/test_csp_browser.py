"""The UI under its Content Security Policy, in Debian's Chromium: every main page and htmx interaction
works, and the browser reports no violation (no inline script, style or event handler anywhere).

Violations are caught two ways: the `securitypolicyviolation` DOM event, reported back through a
Playwright binding (which survives navigations), and Chromium's console messages about refused content.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import World
from tests.integrations.conftest import add_webhook
from tests.web.test_browser_journey import NEEDS_CHROMIUM, chromium, log_in, new_page

pytestmark = [NEEDS_CHROMIUM, pytest.mark.one_database]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} in ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


def watch_for_violations(page: Page) -> list[str]:
    violations: list[str] = []
    page.expose_binding("reportCspViolation", lambda source, text: violations.append(text))
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            violations.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return violations


def test_the_main_pages_and_their_htmx_interactions_raise_no_csp_violation(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    check_id = world.orders_fail.check_ref_id
    orders_id = world.orders.pk
    webhook, _ = add_webhook(world, "https://hooks.example.com/quell")

    # The first request loads the URLconf and the API schema, which on a busy machine outlasts a page timeout.
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        violations = watch_for_violations(page)

        response = page.goto(f"{base}/login/")
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        log_in(page, base, "alice@example.com")

        page.goto(f"{base}/datasets/")
        expect(page.get_by_role("link", name="orders", exact=True)).to_be_visible()
        page.goto(f"{base}/datasets/{orders_id}")
        expect(page.get_by_role("heading", name=re.compile("orders"))).to_be_visible()

        # The check page: its chart, then Create Incident from the menu, in the dialog, through htmx.
        page.goto(f"{base}/checks/{check_id}")
        expect(page.locator("figure.chart")).to_be_visible()
        page.locator("#check-menu summary").click()
        page.get_by_role("link", name="Create Incident").click()
        dialog = page.locator("dialog#create-incident")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#create-incident-form")).to_be_visible()  # loaded as the dialog opens
        dialog.get_by_label("Name").fill("Orders table is empty")
        dialog.get_by_label("Severity").select_option("critical")
        dialog.locator(f"#result-{world.orders_fail.pk}").check()
        dialog.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(r"/incidents/\d+$"))

        # The incident page's Update form: a refused change and an accepted one, both swapped in by htmx.
        edit = page.locator("#edit-form")
        expect(page.get_by_role("heading", name="Update")).to_be_visible()
        edit.get_by_label("Status").select_option(label="Resolved")
        edit.get_by_role("button", name="Save").click()
        expect(page.locator("#id_resolution_notes_error")).to_be_visible()
        edit.get_by_label("Status").select_option(label="Investigating")
        edit.get_by_role("button", name="Save").click()
        expect(page.locator(".page-head .badges")).to_contain_text("Investigating")
        page.get_by_text("Include more check results").click()
        with page.expect_response(lambda response: "/results/picker" in response.url):
            page.get_by_label("Search by check name").fill("freshness")

        # The incidents list filters itself through htmx.
        page.goto(f"{base}/incidents/")
        with page.expect_response(lambda response: "/incidents" in response.url):
            page.get_by_label("Severity", exact=True).select_option(label="Critical")
        expect(page.get_by_role("link", name="Orders table is empty")).to_be_visible()

        # The delivery log's filter applies on change, from quell.js rather than an inline handler.
        page.goto(f"{base}/settings/integrations/{webhook.pk}")
        page.get_by_label("Show").select_option(index=1)
        expect(page).to_have_url(re.compile(r"status="))

        for path in (
            "/",
            "/profile/",
            "/settings/",
            "/settings/users",
            "/settings/roles",
            "/settings/datasets",
            "/settings/integrations/",
            "/api/v1/docs",
        ):
            answer = page.goto(base + path)
            assert answer is not None
            assert answer.status == 200, path
            page.wait_for_load_state("networkidle")
        expect(page.locator(".swagger-ui")).to_be_visible()

        assert violations == []

        # The detector itself: an inline style attribute must be reported.
        page.goto(f"{base}/")
        page.evaluate("document.body.setAttribute('style', 'color: red')")
        page.wait_for_timeout(500)
        assert any("style-src" in v for v in violations), violations
