"""Which open incidents check results, and a check, are already in: what warns about duplicates before
someone opens a second incident for the same failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quell.accounts import permissions
from quell.accounts.models import Responsibility
from quell.catalog import queries as catalog_queries
from quell.catalog.models import CheckResult
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentDataset
from quell.lib.errors import NotFound
from tests.conftest import World, push


def queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def open_incident(world: World, title: str, *results: CheckResult) -> Incident:
    """An open incident; results already in one are confirmed (allow_duplicate), as these tests put a
    result in several open incidents on purpose."""
    return incidents.create_incident(
        by=world.admin, title=title, check_result_ids=[r.pk for r in results], allow_duplicate=True
    )


def resolve(world: World, incident: Incident) -> None:
    incidents.update_incident(incident.pk, by=world.admin, status="resolved", resolution_notes="Reloaded.")


def numbers(found: dict[int, list[Incident]]) -> dict[int, list[int]]:
    return {result_id: [i.number for i in listed] for result_id, listed in found.items()}


def test_each_result_lists_the_open_incidents_it_is_in_newest_first(world: World) -> None:
    older = open_incident(world, "Orders empty", world.orders_fail, world.orders_warn)
    newer = open_incident(world, "Orders stale", world.orders_fail)

    found = incident_queries.open_incidents_of_results(
        [world.orders_fail.pk, world.orders_warn.pk, world.orders_fail_2.pk], by=world.viewer
    )

    assert numbers(found) == {
        world.orders_fail.pk: [newer.number, older.number],
        world.orders_warn.pk: [older.number],
    }
    assert found[world.orders_fail.pk][0].title == "Orders stale"
    # One instance per incident, however many of the results it holds.
    assert found[world.orders_fail.pk][1] is found[world.orders_warn.pk][0]


def test_resolved_incidents_are_not_listed(world: World) -> None:
    resolved = open_incident(world, "Orders empty", world.orders_fail)
    resolve(world, resolved)
    still_open = open_incident(world, "Orders stale", world.orders_fail)

    found = incident_queries.open_incidents_of_results([world.orders_fail.pk], by=world.editor)

    assert numbers(found) == {world.orders_fail.pk: [still_open.number]}


def test_results_the_caller_cannot_see_name_no_incident(world: World) -> None:
    # The incident spans the private orders and the public customers; the outsider sees only customers.
    both = open_incident(world, "Warehouse load failed", world.orders_fail, world.customers_fail)

    found = incident_queries.open_incidents_of_results(
        [world.orders_fail.pk, world.customers_fail.pk], by=world.outsider
    )

    assert numbers(found) == {world.customers_fail.pk: [both.number]}
    assert incident_queries.open_incidents_of_results([world.orders_fail.pk], by=world.admin) != {}


def test_an_incident_the_caller_cannot_see_is_not_named_beside_a_result_they_can(world: World) -> None:
    # The services keep an incident's datasets to its results' datasets, so this takes rows put there
    # by hand: the orders result in an incident that is only on a dataset private to the admin.
    incident = open_incident(world, "Payroll is off", world.orders_fail)
    (payroll,) = push(world.admin, "warehouse", "payroll", ("row_count > 0", "fail", 0))
    Responsibility.objects.filter(dataset=payroll.dataset).delete()
    IncidentDataset.objects.filter(incident=incident).update(dataset=payroll.dataset)

    assert incident_queries.open_incidents_of_results([world.orders_fail.pk], by=world.viewer) == {}
    assert numbers(incident_queries.open_incidents_of_results([world.orders_fail.pk], by=world.admin)) == {
        world.orders_fail.pk: [incident.number]
    }


def test_an_inactive_caller_sees_nothing(world: World) -> None:
    open_incident(world, "Orders empty", world.orders_fail)
    world.viewer.is_active = False

    assert incident_queries.open_incidents_of_results([world.orders_fail.pk], by=world.viewer) == {}


@pytest.mark.parametrize("user", ["admin", "editor", "viewer"])
def test_the_incidents_of_many_results_cost_one_query_as_of_few(world: World, user: str) -> None:
    by = world.user(user)
    results = [
        r for n in range(12) for r in push(world.admin, "warehouse", "orders", (f"check {n}", "fail", n))
    ]
    for n in range(0, 12, 2):
        open_incident(world, f"Problem {n}", results[n], results[n + 1])
        open_incident(world, f"Again {n}", results[n])

    with permissions.groups_remembered():  # as during a request: the caller's groups are read once
        incident_queries.open_incidents_of_results([results[0].pk], by=by)
        few = queries(lambda: incident_queries.open_incidents_of_results([results[0].pk], by=by))
        many = queries(lambda: incident_queries.open_incidents_of_results([r.pk for r in results], by=by))

    assert few == many == 1


# --- A check's open incidents ----------------------------------------------------------------------


def row_count_check(world: World, by: str) -> Any:
    return catalog_queries.get_check(world.orders_fail.check_ref_id, by=world.user(by))


def test_a_checks_open_incidents_come_newest_first_and_a_few_at_most(world: World) -> None:
    later = push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0))
    first = open_incident(world, "Orders empty", world.orders_fail)
    resolved = open_incident(world, "Orders empty again", world.orders_fail)
    resolve(world, resolved)
    open_incident(world, "Stale orders", world.orders_fail_2)  # another check's
    second = open_incident(world, "Still empty", *later)
    third = open_incident(world, "Empty on Friday", world.orders_fail, *later)
    fourth = open_incident(world, "Empty on Saturday", *later)

    found = incident_queries.open_incidents_of_check(row_count_check(world, "editor"), by=world.editor)

    assert [i.number for i in found] == [fourth.number, third.number, second.number]
    assert [
        i.number
        for i in incident_queries.open_incidents_of_check(
            row_count_check(world, "editor"), by=world.editor, limit=10
        )
    ] == [fourth.number, third.number, second.number, first.number]


def test_each_says_whether_the_caller_may_change_it(world: World) -> None:
    open_incident(world, "Orders empty", world.orders_fail)

    (as_editor,) = incident_queries.open_incidents_of_check(row_count_check(world, "editor"), by=world.editor)
    (as_viewer,) = incident_queries.open_incidents_of_check(row_count_check(world, "viewer"), by=world.viewer)
    (as_admin,) = incident_queries.open_incidents_of_check(row_count_check(world, "admin"), by=world.admin)

    assert (as_editor.can_change, as_viewer.can_change, as_admin.can_change) == (True, False, True)  # type: ignore[attr-defined]
    assert incident_queries.can_manage(as_viewer, world.viewer) is False


def test_a_check_the_caller_cannot_see_is_not_found(world: World) -> None:
    open_incident(world, "Orders empty", world.orders_fail)
    check = row_count_check(world, "admin")

    with pytest.raises(NotFound):
        incident_queries.open_incidents_of_check(check, by=world.outsider)


def test_a_checks_open_incidents_are_one_query(world: World) -> None:
    check = row_count_check(world, "viewer")
    for n in range(5):
        open_incident(world, f"Orders empty {n}", world.orders_fail)

    with permissions.groups_remembered():
        incident_queries.open_incidents_of_check(check, by=world.viewer)
        assert queries(lambda: incident_queries.open_incidents_of_check(check, by=world.viewer)) == 1
