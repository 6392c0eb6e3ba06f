"""Lists cost a fixed number of queries, however many rows they show (no query per row)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quell.api.catalog import _with_counts, check_out, dataset_out, result_out
from quell.api.incidents import incident_out, timeline_out
from quell.catalog import queries as catalog_queries
from quell.incidents import details as incident_details
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from tests.conftest import World, push


def queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def open_incidents(world: World, count: int) -> None:
    for n in range(count):
        (result,) = push(world.admin, "warehouse", "orders", (f"check {n}", "fail", n))
        # The same checks at the same data time give the same results: a second call opens others.
        incident = incidents.create_incident(
            by=world.editor, title=f"Problem {n}", check_result_ids=[result.pk], allow_duplicate=True
        )
        incidents.update_incident(
            incident.pk, by=world.editor, status="investigating", lead_id=world.manager.pk
        )


@pytest.mark.parametrize("user", ["admin", "editor", "viewer"])
def test_the_incident_list_costs_the_same_for_3_and_for_15_incidents(world: World, user: str) -> None:
    by = world.user(user)

    def list_page() -> None:
        page = list(incident_queries.list_incidents(incident_queries.IncidentFilters(), by=by)[:100])
        incident_out(page, incident_details.details_of(page, by=by))

    open_incidents(world, 3)
    few = queries(list_page)
    open_incidents(world, 12)
    assert queries(list_page) == few


def test_the_dataset_and_check_lists_cost_the_same_for_few_and_many(world: World) -> None:
    def lists() -> None:
        dataset_out(_with_counts(catalog_queries.list_datasets(by=world.viewer)))
        check_out(catalog_queries.list_checks(by=world.viewer))
        check = catalog_queries.list_checks(by=world.viewer).first()
        assert check is not None
        result_out(catalog_queries.list_check_results(check.pk, by=world.viewer)[:100])

    few = queries(lists)
    for n in range(10):
        push(
            world.admin,
            "warehouse",
            f"table_{n}",
            ("row_count > 0", "pass", 5),
            ("freshness < 1d", "warn", 2),
        )
    assert queries(lists) == few


def test_the_timeline_costs_the_same_however_long_it_is(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Long story", check_result_ids=[world.orders_fail.pk]
    )
    incidents.update_incident(incident.pk, by=world.editor, lead_id=world.manager.pk)

    def read() -> None:
        timeline_out(incident_queries.timeline(incident.pk, by=world.viewer))

    few = queries(read)
    for n in range(8):
        incidents.add_comment(incident.pk, f"note {n}", by=world.editor)
        incidents.update_incident(
            incident.pk, by=world.editor, lead_id=[world.editor, world.manager][n % 2].pk
        )
    assert queries(read) == few
