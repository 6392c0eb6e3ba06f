"""Nothing opens a second incident unawares: the Create Incident dialog names the open incidents each
result is already in and offers "Add to #N" beside creating a new one, and the incident page's "Include
more check results" picker names the other open incidents a result is in."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import Organization
from quell.catalog.models import CheckResult
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import EventKind, Incident, IncidentCheckResult, TimelineEvent
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


def check_url(world: World) -> str:
    return f"/checks/{world.orders_fail.check_ref_id}"


def dialog(client: Client, world: World) -> str:
    """The Create Incident form as the check page's dialog loads it."""
    response = client.get(f"{check_url(world)}/create-incident", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def label_of(body: str, result: CheckResult, prefix: str = "result") -> str:
    """The <label> of one result's checkbox."""
    return body.split(f'<label for="{prefix}-{result.pk}">')[1].split("</label>")[0]


def open_incident(world: World, title: str, *results: CheckResult) -> Incident:
    """An open incident of the editor's; results already in one are confirmed (allow_duplicate), as
    these tests put a check in several open incidents on purpose."""
    return incidents.create_incident(
        by=world.editor, title=title, check_result_ids=[r.pk for r in results], allow_duplicate=True
    )


def link_to(incident: Incident) -> str:
    return f'<a href="/incidents/{incident.number}">#{incident.number} {incident.title}</a>'


def add_to(client: Client, world: World, incident: Incident, *results: CheckResult, **extra: Any) -> Any:
    """Press "Add to #N" with these results chosen (and the rest of the form as left: empty)."""
    data = {"title": "", "severity": "major", "results": [r.pk for r in results], "add_to": incident.pk}
    return client.post(f"{check_url(world)}/create-incident", data, **extra)


def stored(incident: Incident) -> dict[str, Any]:
    incident.refresh_from_db()
    return {
        "results": sorted(incident.check_results.values_list("pk", flat=True)),
        "version": incident.version,
        "timeline": list(incident.timeline.values_list("pk", flat=True)),
    }


# --- The Create Incident dialog -------------------------------------------------------------------


def test_each_result_names_the_open_incidents_it_is_in_with_a_link(client_as: ClientAs, world: World) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    first = open_incident(world, "Orders table is empty", world.orders_fail)
    second = open_incident(world, "Nightly load wrote nothing", world.orders_fail)

    body = dialog(client_as("editor"), world)

    assert label_of(body, world.orders_fail).count('class="in-incident"') == 2
    assert f"in {link_to(second)}" in label_of(body, world.orders_fail)
    assert f"in {link_to(first)}" in label_of(body, world.orders_fail)
    assert "in-incident" not in label_of(body, later)


def test_results_in_resolved_incidents_are_not_marked_nor_offered(client_as: ClientAs, world: World) -> None:
    resolved = open_incident(world, "Orders table is empty", world.orders_fail)
    incidents.update_incident(resolved.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")

    body = dialog(client_as("editor"), world)

    assert "in-incident" not in label_of(body, world.orders_fail)
    assert 'name="add_to"' not in body
    assert 'id="open-incidents"' not in body
    assert ">Save</button>" in body


def test_the_dialog_offers_add_to_each_open_incident_newest_first_beside_create_new(
    client_as: ClientAs, world: World
) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    older = open_incident(world, "Orders table is empty", world.orders_fail)
    newer = open_incident(world, "Nightly load wrote nothing", later)

    body = dialog(client_as("editor"), world)

    notice = body.split('id="open-incidents"')[1].split("</div>")[0]
    assert link_to(newer) in notice
    assert link_to(older) in notice
    buttons = body.split('<footer class="form-buttons">')[1]
    assert buttons.index(">Create new incident</button>") < buttons.index(f">Add to #{newer.number}</button>")
    assert buttons.index(f">Add to #{newer.number}</button>") < buttons.index(
        f">Add to #{older.number}</button>"
    )
    assert f'name="add_to" value="{newer.pk}"' in buttons


def test_at_most_three_open_incidents_are_offered(client_as: ClientAs, world: World) -> None:
    made = [open_incident(world, f"Orders empty {n}", world.orders_fail) for n in range(4)]

    body = dialog(client_as("editor"), world)

    assert body.count('name="add_to"') == 3
    assert f">Add to #{made[0].number}</button>" not in body


def test_add_to_puts_the_chosen_results_in_the_incident_and_lands_on_it(
    client_as: ClientAs, world: World
) -> None:
    later = [r for n in (1, 2) for r in push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", 0))]
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)
    client = client_as("editor")

    response = add_to(client, world, incident, *later)

    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.number}#results"
    assert Incident.objects.count() == 1
    assert set(incident.check_results.values_list("pk", flat=True)) == {
        world.orders_fail.pk,
        *(r.pk for r in later),
    }
    new_events = TimelineEvent.objects.filter(incident=incident).exclude(pk__in=before["timeline"])
    assert sorted(new_events.values_list("kind", "actor", "check_result")) == [
        (EventKind.RESULT_ATTACHED, world.editor.pk, r.pk) for r in later
    ]
    page = client.get(response["Location"]).content.decode()
    assert f"Added 2 check results to #{incident.number}." in page


def test_add_to_from_the_dialog_sends_the_browser_to_the_incident(client_as: ClientAs, world: World) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    incident = open_incident(world, "Orders table is empty", world.orders_fail)

    response = add_to(client_as("editor"), world, incident, later, HTTP_HX_REQUEST="true")

    assert response["HX-Redirect"] == f"/incidents/{incident.number}#results"
    assert incident.check_results.filter(pk=later.pk).exists()


def test_adding_results_already_in_the_incident_changes_nothing_and_says_so(
    client_as: ClientAs, world: World
) -> None:
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)
    client = client_as("editor")

    response = add_to(client, world, incident, world.orders_fail)

    assert response.status_code == 302
    assert stored(incident) == before
    assert (
        f"The chosen check results were already in #{incident.number}."
        in client.get(response["Location"]).content.decode()
    )


def test_adding_with_no_result_chosen_asks_for_one_and_does_not_ask_for_a_name(
    client_as: ClientAs, world: World
) -> None:
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)

    response = add_to(client_as("editor"), world, incident, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="create-incident-form"')
    assert "Select one or more warn or fail results." in body
    assert 'id="id_title_error"' not in body
    assert stored(incident) == before


def test_adding_to_an_incident_resolved_since_the_form_was_shown_is_refused(
    client_as: ClientAs, world: World
) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    incidents.update_incident(incident.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")
    before = stored(incident)

    response = add_to(client_as("editor"), world, incident, later)

    assert response.status_code == 400
    assert "no longer one of this check&#x27;s open incidents" in response.content.decode()
    assert stored(incident) == before


def test_a_result_of_another_check_cannot_be_added_from_this_checks_dialog(
    client_as: ClientAs, world: World
) -> None:
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)

    response = add_to(client_as("editor"), world, incident, world.orders_fail_2)

    assert response.status_code == 400
    assert stored(incident) == before


def test_a_viewer_cannot_add_results_by_a_forged_post(client_as: ClientAs, world: World) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)
    viewer = client_as("viewer")

    from_the_dialog = add_to(viewer, world, incident, later)
    from_the_incident_page = viewer.post(f"/incidents/{incident.number}/results", {"results": [later.pk]})

    assert (from_the_dialog.status_code, from_the_incident_page.status_code) == (403, 403)
    assert stored(incident) == before
    assert not IncidentCheckResult.objects.filter(check_result=later).exists()


def test_an_open_incident_the_caller_may_not_change_is_linked_with_the_reason(
    client_as: ClientAs, world: World
) -> None:
    # The dialog is for those who manage the check's dataset, and every incident holding its results is
    # on that dataset, so today's rules always let them add; the form still says why when they may not.
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    (offered,) = incident_queries.open_incidents_of_check(world.orders_fail.check_ref, by=world.viewer)

    buttons = render_to_string("web/_add_to_open_incidents.html", {"open_incidents": [offered]})

    assert "<button" not in buttons
    assert f'You can\'t change <a href="/incidents/{incident.number}">#{incident.number}</a>' in buttons


def test_the_dialog_costs_the_same_however_many_results_are_in_open_incidents(
    client_as: ClientAs, world: World
) -> None:
    results = [
        r for n in range(1, 13) for r in push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", n))
    ]
    open_incident(world, "Orders table is empty", results[0])
    client = client_as("editor")
    dialog(client, world)
    with CaptureQueriesContext(connection) as few:
        dialog(client, world)

    for n in range(1, 11, 2):
        open_incident(world, f"Empty {n}", results[n], results[n + 1])
        open_incident(world, f"Still empty {n}", results[n])

    with CaptureQueriesContext(connection) as many:
        body = dialog(client, world)
    assert body.count('class="in-incident"') > 12
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Creating from results already in an open incident (the service's duplicate guard) -------------


def create_new(client: Client, world: World, *results: CheckResult, **fields: Any) -> Any:
    """Press "Create new incident" from the dialog, with a name, a description and these results."""
    data = {
        "title": "Orders are empty",
        "description": "No rows since Tuesday.",
        "severity": "critical",
        "lead": world.manager.pk,
        "results": [r.pk for r in results],
        **fields,
    }
    return client.post(f"{check_url(world)}/create-incident", data, HTTP_HX_REQUEST="true")


def refusal(body: str) -> str:
    return body.split('id="duplicate-incident"')[1].split("</div>")[0]


def test_creating_from_a_result_in_an_open_incident_is_refused_with_add_to_and_a_box_to_confirm(
    client_as: ClientAs, world: World
) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    incident = open_incident(world, "Orders table is empty", world.orders_fail)

    response = create_new(client_as("editor"), world, world.orders_fail, later)

    assert response.status_code == 409
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="create-incident-form"')
    said = refusal(body)
    assert f"1 of the chosen results is already in open incident {link_to(incident)}" in said
    assert '<input type="checkbox" name="allow_duplicate" id="id_allow_duplicate">' in said
    assert "Open a separate incident anyway" in said
    buttons = body.split('<footer class="form-buttons">')[1]
    assert f'<button type="submit" name="add_to" value="{incident.pk}"' in buttons
    # Everything entered is kept.
    assert 'value="Orders are empty"' in body
    assert "No rows since Tuesday.</textarea>" in body
    assert f'<option value="{world.manager.pk}" selected>' in body
    assert f'value="{world.orders_fail.pk}" checked' in body
    assert f'value="{later.pk}" checked' in body
    assert Incident.objects.count() == 1


def test_ticking_the_box_opens_the_separate_incident(client_as: ClientAs, world: World) -> None:
    incident = open_incident(world, "Orders table is empty", world.orders_fail)

    response = create_new(client_as("editor"), world, world.orders_fail, allow_duplicate="on")

    created = Incident.objects.exclude(pk=incident.pk).get()
    assert response["HX-Redirect"] == f"/incidents/{created.number}"
    assert (created.title, created.lead) == ("Orders are empty", world.manager)
    assert list(created.check_results.values_list("pk", flat=True)) == [world.orders_fail.pk]


def test_a_ticked_box_stays_ticked_when_the_form_comes_back_for_another_reason(
    client_as: ClientAs, world: World
) -> None:
    open_incident(world, "Orders table is empty", world.orders_fail)

    response = create_new(client_as("editor"), world, world.orders_fail, title=" ", allow_duplicate="on")

    assert response.status_code == 400
    assert 'name="allow_duplicate" id="id_allow_duplicate" checked>' in response.content.decode()
    assert Incident.objects.count() == 1


def test_add_to_from_the_refusal_reaches_an_incident_beyond_the_few_the_dialog_offers(
    client_as: ClientAs, world: World
) -> None:
    later = [
        r for n in (1, 2, 3) for r in push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", 0))
    ]
    oldest = open_incident(world, "Orders table is empty", world.orders_fail)
    for n, result in enumerate(later):
        open_incident(world, f"Empty again {n}", result)
    # Folding off: the new failure stays out of every incident until someone adds it.
    Organization.objects.update(fold_results=False)
    (unlinked,) = push_at(world.admin, "orders", day(4), ("row_count > 0", "fail", 0))
    client = client_as("editor")
    # The dialog offers the newest three, not it.
    assert f'name="add_to" value="{oldest.pk}"' not in dialog(client, world)

    refused = create_new(client, world, world.orders_fail, unlinked)
    assert f'name="add_to" value="{oldest.pk}"' in refused.content.decode()
    response = add_to(client, world, oldest, world.orders_fail, unlinked)

    assert response["Location"] == f"/incidents/{oldest.number}#results"
    assert set(oldest.check_results.values_list("pk", flat=True)) == {world.orders_fail.pk, unlinked.pk}
    assert Incident.objects.count() == 4


# --- The incident page's "Include more check results" ---------------------------------------------


def test_the_picker_names_the_other_open_incidents_a_result_is_in(client_as: ClientAs, world: World) -> None:
    this = open_incident(world, "Orders table is empty", world.orders_fail)
    other = open_incident(world, "Missing ids", world.orders_warn, world.orders_fail)
    resolved = open_incident(world, "Stale orders", world.orders_fail_2)
    incidents.update_incident(resolved.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")

    page = client_as("editor").get(f"/incidents/{this.number}").content.decode()
    picker = page.split('id="results-picker"')[1].split("</fieldset>")[0]

    assert f"in {link_to(other)}" in label_of(picker, world.orders_warn, "attach")
    assert "in-incident" not in label_of(picker, world.orders_fail_2, "attach")  # only in a resolved one
    assert f'id="attach-{world.orders_fail.pk}"' not in picker  # already in this incident: not offered


def test_the_pickers_search_names_them_too(client_as: ClientAs, world: World) -> None:
    this = open_incident(world, "Orders table is empty", world.orders_fail)
    other = open_incident(world, "Missing ids", world.orders_warn)

    response = client_as("editor").get(f"/incidents/{this.number}/results/picker", {"results_q": "missing"})

    assert f"in {link_to(other)}" in label_of(response.content.decode(), world.orders_warn, "attach")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("admin", 302),
        ("manager", 302),
        ("editor", 302),
        ("viewer", 403),
        # The orders dataset is private: to an outsider its check does not exist.
        ("outsider", 404),
        # Not signed in: to the log-in page, nothing added.
        ("anonymous", 302),
    ],
)
def test_adding_to_an_open_incident_is_for_those_who_manage_incidents(
    name: str, status: int, client_as: ClientAs, world: World
) -> None:
    (later,) = push_at(world.admin, "orders", day(1), ("row_count > 0", "fail", 0))
    incident = open_incident(world, "Orders table is empty", world.orders_fail)
    before = stored(incident)

    response = add_to(client_as(name), world, incident, later)

    assert response.status_code == status
    if name in ("admin", "manager", "editor"):
        assert response["Location"] == f"/incidents/{incident.number}#results"
        assert stored(incident)["results"] == sorted([world.orders_fail.pk, later.pk])
    else:
        assert stored(incident) == before
    if name == "anonymous":
        assert response["Location"].startswith("/login/")
