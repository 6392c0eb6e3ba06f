"""Creating an incident from warn and fail check results."""

from __future__ import annotations

import pytest

from quell.accounts.models import Responsibility, User
from quell.catalog.models import CheckResult
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentDataset, TimelineEvent
from quell.lib.errors import Forbidden, Unprocessable
from tests.conftest import ClientFor, World, push


def test_an_editor_creates_an_incident_from_two_results(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents",
        json={
            "title": "Orders table is empty",
            "description": "Nightly load wrote nothing.",
            "severity": "critical",
            "checkResultIds": [world.orders_fail.pk, world.orders_warn.pk],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["title"] == body["name"] == "Orders table is empty"
    assert body["status"] == "reported"
    assert body["severity"] == "critical"
    assert body["reporter"]["email"] == body["lead"]["email"] == "editor@example.com"
    assert {r["id"] for r in body["checkResults"]} == {world.orders_fail.pk, world.orders_warn.pk}
    assert [d["name"] for d in body["datasets"]] == ["orders"]
    assert body["number"] >= 1
    assert body["version"] == 1
    assert body["cloudUrl"].endswith(f"/incidents/{body['number']}")


def test_name_and_monitor_result_ids_are_accepted_as_in_soda(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents",
        json={"name": "Soda-style", "monitorResultIds": [world.orders_fail.pk], "description": ""},
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Soda-style"


def test_a_passing_result_cannot_start_an_incident(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/incidents", json={"title": "Nothing wrong", "checkResultIds": [world.orders_pass.pk]}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "check_result_not_failing"
    assert not Incident.objects.exists()
    assert not TimelineEvent.objects.exists()


def test_a_viewer_cannot_create_an_incident(client_for: ClientFor, world: World) -> None:
    response = client_for("viewer").post(
        "/incidents", json={"title": "x", "checkResultIds": [world.orders_fail.pk]}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Incident.objects.exists()


# --- The duplicate guard: results already in an open incident -------------------------------------


def open_incident(by: User, title: str, *results: CheckResult, allow_duplicate: bool = False) -> Incident:
    return incidents.create_incident(
        by=by, title=title, check_result_ids=[r.pk for r in results], allow_duplicate=allow_duplicate
    )


def test_results_already_in_an_open_incident_are_refused_naming_that_incident(world: World) -> None:
    late = open_incident(world.editor, "Orders late", world.orders_fail)

    with pytest.raises(incidents.DuplicateIncident) as refused:
        open_incident(world.editor, "Orders empty", world.orders_fail, world.orders_warn)

    assert (refused.value.status, refused.value.code) == (409, "duplicate_incident")
    assert refused.value.incident.pk == late.pk
    assert refused.value.message == (
        f"Check result {world.orders_fail.pk} is already in open incident #{late.number} 'Orders late'. "
        "Add it to that incident, or confirm a separate incident with allowDuplicate."
    )
    assert list(Incident.objects.values_list("title", flat=True)) == ["Orders late"]
    assert TimelineEvent.objects.filter(incident=late).count() == 2  # created, one result attached


def test_of_several_open_incidents_the_newest_is_named_with_the_results_it_holds(world: World) -> None:
    open_incident(world.editor, "Orders late", world.orders_fail, world.orders_warn)
    newest = open_incident(
        world.manager, "Orders stale", world.orders_warn, world.orders_fail_2, allow_duplicate=True
    )

    with pytest.raises(incidents.DuplicateIncident) as refused:
        open_incident(
            world.editor, "Orders broken", world.orders_fail, world.orders_warn, world.orders_fail_2
        )

    assert refused.value.incident.pk == newest.pk
    ids = sorted([world.orders_warn.pk, world.orders_fail_2.pk])
    assert refused.value.message.startswith(
        f"Check results {ids[0]}, {ids[1]} are already in open incident #{newest.number} 'Orders stale'. "
        "Add them to that incident"
    )


def test_a_caller_who_confirms_gets_a_separate_incident(world: World) -> None:
    late = open_incident(world.editor, "Orders late", world.orders_fail)

    separate = incidents.create_incident(
        by=world.editor, title="Orders empty", check_result_ids=[world.orders_fail.pk], allow_duplicate=True
    )

    assert separate.pk != late.pk
    assert list(separate.check_results.values_list("pk", flat=True)) == [world.orders_fail.pk]
    assert list(late.check_results.values_list("pk", flat=True)) == [world.orders_fail.pk]


def test_results_only_in_resolved_incidents_are_no_duplicate(world: World) -> None:
    late = open_incident(world.editor, "Orders late", world.orders_fail)
    incidents.update_incident(late.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")

    again = open_incident(world.editor, "Orders late again", world.orders_fail)

    assert again.status == "reported"
    assert Incident.objects.count() == 2


def test_an_open_incident_is_always_visible_to_whoever_may_create_from_its_results(world: World) -> None:
    # An incident's datasets include its results' datasets, and creating needs View (and Manage
    # incidents) on the dataset of every result: so the editor, who cannot view payroll, still sees
    # and is refused with an incident spanning orders and payroll.
    (payroll,) = push(world.admin, "warehouse", "payroll", ("row_count > 0", "fail", 0))
    Responsibility.objects.filter(dataset=payroll.dataset).delete()
    spanning = open_incident(world.admin, "Warehouse load failed", world.orders_fail, payroll)

    with pytest.raises(incidents.DuplicateIncident) as refused:
        open_incident(world.editor, "Orders empty", world.orders_fail)

    assert refused.value.incident.pk == spanning.pk
    # Someone who cannot see a result learns nothing of its incidents: it is unknown to them.
    with pytest.raises(Unprocessable) as unknown:
        open_incident(world.editor, "Payroll empty", payroll)
    assert unknown.value.code == "unknown_check_results"


def test_an_open_incident_the_caller_cannot_see_is_neither_named_nor_a_refusal(world: World) -> None:
    # Only rows put there by hand make one: the orders result in an incident only on a dataset private
    # to the admin. Naming it would show the editor an incident they cannot see, and "add to it" is
    # not theirs to do, so the guard lets the creation through.
    hidden = open_incident(world.admin, "Payroll is off", world.orders_fail)
    (payroll,) = push(world.admin, "warehouse", "payroll", ("row_count > 0", "fail", 0))
    Responsibility.objects.filter(dataset=payroll.dataset).delete()
    IncidentDataset.objects.filter(incident=hidden).update(dataset=payroll.dataset)

    created = open_incident(world.editor, "Orders empty", world.orders_fail)

    assert created.pk != hidden.pk
    with pytest.raises(incidents.DuplicateIncident):
        open_incident(world.admin, "Orders empty again", world.orders_fail_2, world.orders_fail)


def test_permission_comes_before_the_duplicate_guard(world: World) -> None:
    open_incident(world.editor, "Orders late", world.orders_fail)

    with pytest.raises(Forbidden):
        open_incident(world.viewer, "Orders empty", world.orders_fail)


def test_an_api_client_is_answered_409_with_the_open_incident(client_for: ClientFor, world: World) -> None:
    late = open_incident(world.editor, "Orders late", world.orders_fail)

    response = client_for("editor").post(
        "/incidents", json={"name": "Orders empty", "monitorResultIds": [world.orders_fail.pk]}
    )

    assert response.status_code == 409
    assert response.json() == {
        "code": "duplicate_incident",
        "message": f"Check result {world.orders_fail.pk} is already in open incident #{late.number} "
        "'Orders late'. Add it to that incident, or confirm a separate incident with allowDuplicate.",
        "incident": {"id": late.pk, "number": late.number, "name": "Orders late"},
    }
    assert Incident.objects.count() == 1


def test_an_api_client_that_allows_a_duplicate_gets_201(client_for: ClientFor, world: World) -> None:
    late = open_incident(world.editor, "Orders late", world.orders_fail)

    response = client_for("editor").post(
        "/incidents",
        json={"title": "Orders empty", "checkResultIds": [world.orders_fail.pk], "allowDuplicate": True},
    )

    assert response.status_code == 201, response.text
    assert response.json()["id"] != late.pk
    assert Incident.objects.count() == 2
