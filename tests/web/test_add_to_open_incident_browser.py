"""In Debian's Chromium: the Create Incident dialog says which open incident the check's results are
already in, and "Add to #N" files the chosen results there instead of opening a second incident; the
same works as plain form posts with scripts turned off."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from quell.accounts.models import Organization
from quell.incidents import services as incidents
from quell.incidents.models import EventKind, Incident
from tests.conftest import World
from tests.web.conftest import day, push_at
from tests.web.test_browser_journey import chromium, log_in, new_page, pytestmark  # noqa: F401
from tests.web.test_create_dialog_browser import open_create_incident
from tests.web.test_csp_browser import watch_for_violations


def expect_results_added(page: Page, incident: Incident, count: int) -> None:
    expect(page).to_have_url(re.compile(rf"/incidents/{incident.number}#results$"))
    plural = "s" if count != 1 else ""
    expect(page.get_by_role("status")).to_contain_text(
        f"Added {count} check result{plural} to #{incident.number}."
    )


def test_the_dialog_names_the_open_incident_and_adds_the_chosen_results_to_it(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    # Folding off: the later failure waits to be added by hand, as it does without rules or folding.
    Organization.objects.update(fold_results=False)
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)  # the first request loads the URLconf, slow on a busy machine

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        violations = watch_for_violations(page)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        open_create_incident(page)

        dialog = page.locator("dialog#create-incident")
        notice = dialog.locator("#open-incidents")
        expect(notice).to_contain_text("This check is already in open incident")
        expect(
            notice.get_by_role("link", name=f"#{incident.number} Orders table is empty")
        ).to_have_attribute("href", f"/incidents/{incident.number}")
        already = dialog.locator(f"label[for=result-{world.orders_fail.pk}] .in-incident")
        expect(already).to_have_text(f"in #{incident.number} Orders table is empty")
        expect(dialog.locator(f"label[for=result-{later.pk}] .in-incident")).to_have_count(0)
        expect(dialog.get_by_role("button", name="Create new incident")).to_be_visible()

        dialog.locator(f"#result-{later.pk}").check()
        dialog.get_by_role("button", name=f"Add to #{incident.number}").click()

        expect_results_added(page, incident, 1)
        results = page.locator("#results table")
        expect(results.get_by_role("row")).to_have_count(3)  # the heading and both results
        timeline = page.locator("ol.timeline")
        expect(timeline.get_by_text("included the check result")).to_have_count(2)
        assert violations == []

    assert Incident.objects.count() == 1
    assert set(incident.check_results.values_list("pk", flat=True)) == {world.orders_fail.pk, later.pk}
    assert incident.timeline.filter(kind=EventKind.RESULT_ATTACHED, check_result=later).exists()


def test_without_scripts_the_form_page_adds_to_the_open_incident_too(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    Organization.objects.update(fold_results=False)  # as above: added by hand
    later = [r for n in (1, 2) for r in push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", 0))]
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = browser.new_context(
            java_script_enabled=False, viewport={"width": 1280, "height": 860}
        ).new_page()
        page.set_default_timeout(30_000)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        page.locator("#check-menu summary").click()
        page.get_by_role("link", name="Create Incident").click()  # the form's own page, with no dialog

        expect(page).to_have_url(re.compile(rf"/checks/{check_id}/create-incident$"))
        # Pressing "Add to" with nothing chosen says so at the results, and not that a name is missing.
        page.get_by_role("button", name=f"Add to #{incident.number}").click()
        expect(page.locator("#results-error")).to_have_text("Select one or more warn or fail results.")
        expect(page.locator("#id_title_error")).to_have_count(0)

        for result in later:
            page.locator(f"#result-{result.pk}").check()
        page.get_by_role("button", name=f"Add to #{incident.number}").click()

        expect_results_added(page, incident, 2)

    assert Incident.objects.count() == 1
    assert set(incident.check_results.values_list("pk", flat=True)) == {
        world.orders_fail.pk,
        *(r.pk for r in later),
    }


def test_creating_from_a_result_in_the_open_incident_is_refused_until_the_box_is_ticked(
    live_server: object, world: World
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    check_id = world.orders_fail.check_ref_id
    httpx.get(f"{base}/login/", timeout=120)

    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        violations = watch_for_violations(page)
        log_in(page, base, "editor@example.com")
        page.goto(f"{base}/checks/{check_id}")
        open_create_incident(page)
        dialog = page.locator("dialog#create-incident")
        dialog.get_by_label("Name").fill("Orders are empty again")
        dialog.locator(f"#result-{world.orders_fail.pk}").check()
        dialog.get_by_role("button", name="Create new incident").click()

        refusal = dialog.locator("#duplicate-incident")
        expect(refusal).to_contain_text("1 of the chosen results is already in open incident")
        expect(refusal.get_by_role("link", name=f"#{incident.number} Orders table is empty")).to_be_visible()
        expect(dialog.get_by_role("button", name=f"Add to #{incident.number}")).to_be_visible()
        expect(dialog.get_by_label("Name")).to_have_value("Orders are empty again")
        expect(dialog.locator(f"#result-{world.orders_fail.pk}")).to_be_checked()

        dialog.get_by_label("Open a separate incident anyway").check()
        dialog.get_by_role("button", name="Create new incident").click()
        page.wait_for_url(re.compile(r"/incidents/\d+$"))
        number = int(page.url.rsplit("/", 1)[1])
        assert violations == []

    # The refused attempt created nothing: one incident besides the open one.
    created = Incident.objects.exclude(pk=incident.pk).get()
    assert (created.number, created.title) == (number, "Orders are empty again")
