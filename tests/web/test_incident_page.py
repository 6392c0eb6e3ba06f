"""The incident page: what it shows, and editing, resolving, including results and commenting from it."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from quell.incidents import services as incidents
from quell.incidents.models import Incident, TimelineEvent
from quell.integrations import services as integrations
from quell.integrations.models import IncidentLink, Integration
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


def page(client_as: ClientAs, role: str, incident: Incident) -> str:
    response = client_as(role).get(f"/incidents/{incident.number}")
    assert response.status_code == 200
    return response.content.decode()


def save(client_as: ClientAs, role: str, incident: Incident, **changes: Any) -> Any:
    """Post the edit form as the page would fill it, with `changes` applied."""
    incident.refresh_from_db()
    data: dict[str, Any] = {
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "lead": incident.lead_id,
        "resolution_notes": incident.resolution_notes,
        "resolution_reason": incident.resolution_reason,
        "version": incident.version,
        **changes,
    }
    return client_as(role).post(f"/incidents/{incident.number}/edit", data)


def test_the_page_shows_the_incidents_facts_results_and_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = page(client_as, "viewer", orders_incident)

    assert f"#{orders_incident.number}</span> Orders table is empty" in body
    assert "The nightly load wrote no rows." in body
    assert "severity-critical" in body
    assert "status-reported" in body
    assert 'id="fact-lead">Editor<' in body
    assert f'href="/datasets/{world.orders.pk}"' in body
    assert f'href="/checks/{world.orders_fail.check_ref_id}">row_count &gt; 0</a>' in body
    assert "created the incident" in body


def test_viewers_see_everything_and_no_edit_controls(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = page(client_as, "viewer", orders_incident)

    assert "Orders table is empty" in body
    for control in ('id="edit-form"', 'id="attach-form"', "comment-form", ">Save</button>"):
        assert control not in body


@pytest.mark.parametrize("role", ["admin", "manager", "editor"])
def test_those_who_manage_incidents_get_the_edit_form(
    client_as: ClientAs, world: World, orders_incident: Incident, role: str
) -> None:
    body = page(client_as, role, orders_incident)

    assert 'id="edit-form"' in body
    assert f'name="version" value="{orders_incident.version}"' in body


def test_saving_assigns_the_lead_and_records_it_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "editor", orders_incident, lead=world.manager.pk)

    assert response["Location"] == f"/incidents/{orders_incident.number}"
    orders_incident.refresh_from_db()
    assert orders_incident.lead == world.manager
    body = page(client_as, "viewer", orders_incident)
    assert "made <strong>Manager</strong> the lead (was Editor)" in body


def test_the_status_moves_through_each_step_and_each_is_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    for status in ("investigating", "fixing"):
        assert save(client_as, "editor", orders_incident, status=status).status_code == 302

    body = page(client_as, "viewer", orders_incident)
    timeline = body.split('id="timeline-heading"')[1]
    assert timeline.count("changed the status from") == 2
    assert "status-investigating" in timeline
    assert "status-fixing" in timeline


def test_resolving_without_a_note_is_refused_at_the_note_field(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(
        client_as,
        "editor",
        orders_incident,
        status="resolved",
        resolution_notes="  ",
        resolution_reason="fixed",
    )

    assert response.status_code == 400
    body = response.content.decode()
    error = body.split('id="id_resolution_notes_error"')[1].split("</small>")[0]
    assert "A resolution note is required to resolve an incident" in error
    orders_incident.refresh_from_db()
    assert orders_incident.status == "reported"
    assert orders_incident.version == 1


def test_the_form_says_at_the_field_that_resolving_needs_a_note(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = page(client_as, "editor", orders_incident)

    assert "Required to resolve: say what was done." in body


def test_resolving_with_a_note_resolves_and_shows_the_note(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    save(
        client_as,
        "editor",
        orders_incident,
        status="resolved",
        resolution_notes="Reran the load.",
        resolution_reason="fixed",
    )

    orders_incident.refresh_from_db()
    assert orders_incident.status == "resolved"
    assert orders_incident.resolved_at is not None
    body = page(client_as, "viewer", orders_incident)
    assert 'id="fact-resolution">Reran the load.' in body
    assert "wrote the resolution note:" in body


def reason_error(response: Any) -> str:
    body = response.content.decode()
    assert 'id="id_resolution_reason_error"' in body, "no error at the reason field"
    return body.split('id="id_resolution_reason_error"')[1].split("</small>")[0]


def test_resolving_without_a_reason_is_refused_at_the_reason_field(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(
        client_as, "editor", orders_incident, status="resolved", resolution_notes="Reran the load."
    )

    assert response.status_code == 400
    assert "Choose why it is resolved." in reason_error(response)
    orders_incident.refresh_from_db()
    assert orders_incident.status == "reported"
    assert orders_incident.version == 1


def test_resolving_without_a_reason_nor_a_note_names_both_fields_at_once(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "editor", orders_incident, status="resolved")

    assert response.status_code == 400
    assert "Choose why it is resolved." in reason_error(response)
    note_error = response.content.decode().split('id="id_resolution_notes_error"')[1].split("</small>")[0]
    assert "A resolution note is required to resolve an incident" in note_error


def test_the_reason_select_has_no_default_and_offers_only_what_people_may_choose(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = page(client_as, "editor", orders_incident)
    select = body.split('name="resolution_reason"')[1].split("</select>")[0]

    assert '<option value="" selected>Choose a reason</option>' in select
    for value, label in [
        ("fixed", "Fixed"),
        ("expected", "Expected behaviour"),
        ("falsePositive", "False positive"),
        ("duplicate", "Duplicate"),
        ("noActionNeeded", "No action needed"),
    ]:
        assert f'<option value="{value}">{label}</option>' in select
    assert "recovered" not in select
    assert "Required to resolve: why it is resolved." in body


def test_resolving_with_a_reason_records_it_shows_it_and_puts_it_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(
        client_as,
        "editor",
        orders_incident,
        status="resolved",
        resolution_notes="The export was paused for the migration.",
        resolution_reason="expected",
    )

    assert response.status_code == 302
    orders_incident.refresh_from_db()
    assert orders_incident.resolution_reason == "expected"
    body = page(client_as, "viewer", orders_incident)
    assert 'id="fact-reason">Expected behaviour<' in body
    assert "gave the resolution reason <strong>Expected behaviour</strong>" in body


def test_changing_the_reason_of_a_resolved_incident_is_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    incidents.update_incident(
        orders_incident.pk,
        by=world.editor,
        status="resolved",
        resolution_notes="Reloaded.",
        resolution_reason="fixed",
    )

    response = save(client_as, "editor", orders_incident, resolution_reason="falsePositive")

    assert response.status_code == 302
    orders_incident.refresh_from_db()
    assert orders_incident.resolution_reason == "falsePositive"
    body = page(client_as, "viewer", orders_incident)
    assert (
        "changed the resolution reason from <strong>Fixed</strong> to <strong>False positive</strong>" in body
    )


def test_reopening_from_the_form_clears_the_reason(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    incidents.update_incident(
        orders_incident.pk,
        by=world.editor,
        status="resolved",
        resolution_notes="Reloaded.",
        resolution_reason="fixed",
    )

    # The form still holds the reason it showed: reopening must not be refused for it.
    response = save(client_as, "editor", orders_incident, status="investigating")

    assert response.status_code == 302
    orders_incident.refresh_from_db()
    assert (orders_incident.status, orders_incident.resolution_reason) == ("investigating", "")
    assert 'id="fact-reason"' not in page(client_as, "viewer", orders_incident)


def test_an_incident_resolved_before_reasons_saves_without_one(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    incidents.update_incident(
        orders_incident.pk, by=world.editor, status="resolved", resolution_notes="Reloaded."
    )
    Incident.objects.filter(pk=orders_incident.pk).update(resolution_reason="")  # as the upgrade leaves it

    response = save(client_as, "editor", orders_incident, title="Orders table was empty")

    assert response.status_code == 302
    orders_incident.refresh_from_db()
    assert (orders_incident.title, orders_incident.resolution_reason) == ("Orders table was empty", "")


def test_an_incident_quell_resolved_as_recovered_keeps_its_reason_when_edited(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    incidents.update_incident(
        orders_incident.pk, by=world.editor, status="resolved", resolution_notes="Passed again."
    )
    Incident.objects.filter(pk=orders_incident.pk).update(resolution_reason="recovered")  # as a rule would

    shown = page(client_as, "editor", orders_incident)
    response = save(client_as, "editor", orders_incident, severity="minor")

    assert '<option value="recovered" selected>Recovered</option>' in shown
    assert response.status_code == 302
    orders_incident.refresh_from_db()
    assert (orders_incident.severity, orders_incident.resolution_reason) == ("minor", "recovered")


def test_a_stale_save_shows_the_other_change_and_overwrites_nothing(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    stale_version = orders_incident.version
    incidents.update_incident(
        orders_incident.pk, by=world.manager, status="investigating", version=stale_version
    )

    response = client_as("editor").post(
        f"/incidents/{orders_incident.number}/edit",
        {
            "title": "Orders table is empty",
            "description": "",
            "severity": "minor",
            "status": "reported",
            "lead": world.editor.pk,
            "resolution_notes": "",
            "version": stale_version,
        },
    )

    assert response.status_code == 409
    body = response.content.decode()
    conflict = body.split('id="conflict"')[1].split("</div>")[0]
    assert "Not saved: someone else changed this incident" in conflict
    assert "Manager" in conflict
    assert "status-investigating" in conflict
    orders_incident.refresh_from_db()
    assert orders_incident.status == "investigating"
    assert orders_incident.severity == "critical"
    # Their edit stays in the form, now at the current version, so saving again is a deliberate choice.
    assert f'name="version" value="{orders_incident.version}"' in body
    assert '<option value="minor" selected>' in body


def test_a_comment_does_not_make_an_open_edit_stale(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    version = orders_incident.version
    incidents.add_comment(orders_incident.pk, "Looking into it.", by=world.manager)

    response = client_as("editor").post(
        f"/incidents/{orders_incident.number}/edit",
        {
            "title": "Orders table is empty",
            "description": "",
            "severity": "minor",
            "status": "reported",
            "lead": world.editor.pk,
            "version": version,
        },
    )

    assert response.status_code == 302


def test_a_viewer_posting_the_edit_form_is_refused_and_changes_nothing(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "viewer", orders_incident, severity="minor")

    assert response.status_code == 403
    orders_incident.refresh_from_db()
    assert orders_incident.severity == "critical"


def test_an_outsider_posting_the_edit_form_is_told_it_does_not_exist(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "outsider", orders_incident, severity="minor")

    assert response.status_code == 404


def test_the_picker_offers_the_datasets_other_warn_and_fail_results(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = page(client_as, "editor", orders_incident)
    picker = body.split('id="results-picker"')[1].split("</fieldset>")[0]

    assert f'id="attach-{world.orders_warn.pk}"' in picker
    assert f'id="attach-{world.orders_fail_2.pk}"' in picker
    assert f'id="attach-{world.orders_fail.pk}"' not in picker  # already included
    assert f'id="attach-{world.orders_pass.pk}"' not in picker  # passing
    assert f'id="attach-{world.customers_fail.pk}"' not in picker  # another dataset


def test_the_picker_searches_by_check_name(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").get(
        f"/incidents/{orders_incident.number}/results/picker", {"results_q": "freshness"}
    )

    body = response.content.decode()
    assert f'id="attach-{world.orders_fail_2.pk}"' in body
    assert f'id="attach-{world.orders_warn.pk}"' not in body


def test_including_a_result_links_it_and_puts_it_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").post(
        f"/incidents/{orders_incident.number}/results", {"results": [world.orders_fail_2.pk]}
    )

    assert response.status_code == 302
    assert orders_incident.check_results.filter(pk=world.orders_fail_2.pk).exists()
    body = page(client_as, "viewer", orders_incident)
    assert "freshness(updated_at) &lt; 1d" in body.split('id="results-heading"')[1].split("</table>")[0]
    assert body.split('id="timeline-heading"')[1].count("included the check result") == 2


def test_including_a_passing_result_is_refused_with_a_message(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").post(
        f"/incidents/{orders_incident.number}/results", {"results": [world.orders_pass.pk]}
    )

    assert response.status_code == 400
    assert "Only warn or fail results can be part of an incident" in response.content.decode()
    assert orders_incident.check_results.count() == 1


def test_including_nothing_asks_to_select_results(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").post(f"/incidents/{orders_incident.number}/results", {})

    assert response.status_code == 400
    assert "Select one or more results." in response.content.decode()


def test_a_comment_lands_on_the_timeline(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").post(
        f"/incidents/{orders_incident.number}/comments", {"text": "Paged the owner."}
    )

    assert response.status_code == 302
    assert "Paged the owner." in page(client_as, "viewer", orders_incident)


def test_an_empty_comment_is_refused_at_the_field(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("editor").post(f"/incidents/{orders_incident.number}/comments", {"text": "   "})

    assert response.status_code == 400
    assert 'id="id_text_error"' in response.content.decode()
    assert not TimelineEvent.objects.filter(kind="comment").exists()


def test_a_viewer_cannot_comment(client_as: ClientAs, world: World, orders_incident: Incident) -> None:
    response = client_as("viewer").post(f"/incidents/{orders_incident.number}/comments", {"text": "Me too"})

    assert response.status_code == 403
    assert not TimelineEvent.objects.filter(kind="comment").exists()


def test_text_with_a_nul_character_is_refused_at_the_field(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "editor", orders_incident, title="Bad\x00title")

    assert response.status_code == 400
    assert 'id="id_title_error"' in response.content.decode()


def test_a_link_given_back_by_an_integration_shows_on_the_incident(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    integration, _ = integrations.create_integration(
        by=world.admin, name="Jira", kind="webhook", url="https://jira.example.com/hook"
    )
    link = IncidentLink.for_pair(orders_incident.pk, integration.pk)
    integrations.set_incident_link(link.token, url="https://jira.example.com/browse/DQ-42", text="DQ-42")

    body = page(client_as, "viewer", orders_incident)

    assert 'href="https://jira.example.com/browse/DQ-42"' in body
    assert "DQ-42" in body
    assert "from Jira" in body


def test_admins_are_told_on_the_home_page_when_an_integration_was_turned_off(
    client_as: ClientAs, world: World
) -> None:
    integration, _ = integrations.create_integration(
        by=world.admin, name="Old receiver", kind="webhook", url="https://old.example.com/hook"
    )
    Integration.objects.filter(pk=integration.pk).update(
        enabled=False, disabled_reason="The receiver answered 410 Gone.", disabled_at=timezone.now()
    )

    assert "Integration Old receiver was turned off" in client_as("admin").get("/").content.decode()
    assert "Old receiver" not in client_as("editor").get("/").content.decode()


def test_the_page_shows_a_small_chart_of_each_linked_check(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    more = [push_at(world.admin, "orders", day(n), ("sum(amount)", "fail", 10.0 * n))[0] for n in range(1, 4)]
    incidents.attach_check_results(orders_incident.pk, [more[-1].pk], by=world.editor)

    body = page(client_as, "viewer", orders_incident)
    charts = body.split('<div class="linked-charts">')[1].split("</div>")[0]

    assert charts.count('<figure class="chart chart-small">') == 2
    assert f'href="/checks/{world.orders_fail.check_ref_id}">row_count &gt; 0</a></h3>' in charts
    assert f'href="/checks/{more[0].check_ref_id}">sum(amount)</a></h3>' in charts
    sum_chart = charts.split("sum(amount)</a></h3>")[1].split("</figure>")[0]
    # The check's recent results, not only the one linked.
    assert sum_chart.count('class="point point-fail"') == 3
    assert 'id="check-' in sum_chart
    assert 'id="chart-title"' not in charts
