"""quell.lib.bulk.insert_rows writes rows as bulk_create would, defaults included, in as few
statements as the database's parameter limit allows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.fields import NOT_PROVIDED
from django.test.utils import CaptureQueriesContext

from quell.incidents import services as incidents
from quell.incidents.models import EventKind, IncidentCheckResult, TimelineEvent
from quell.lib.bulk import insert_rows
from tests.conftest import World

AT = dt.datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


def test_rows_get_the_shared_values_their_own_and_the_defaults_of_the_rest(world: World) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Empty", check_result_ids=[world.orders_fail.pk]
    )

    written = insert_rows(
        TimelineEvent,
        {"kind": EventKind.COMMENT, "actor_id": world.manager.pk, "created_at": AT},
        ("incident_id", "text"),
        [(incident.pk, "first"), (incident.pk, "second")],
    )

    assert written == 2
    rows = list(incident.timeline.filter(kind=EventKind.COMMENT).order_by("id"))
    assert [row.text for row in rows] == ["first", "second"]
    for row in rows:
        assert row.actor == world.manager
        assert row.created_at == AT
        # Not given: the field's default ("" and null) and the database default (rule_name).
        assert row.field == ""
        assert row.old_value is None
        assert row.new_value is None
        assert row.check_result is None
        assert row.rule_name == ""


def test_json_values_are_stored_as_json(world: World) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Empty", check_result_ids=[world.orders_fail.pk]
    )

    insert_rows(
        TimelineEvent,
        {"kind": EventKind.CHANGED, "created_at": AT, "field": "severity"},
        ("incident_id", "old_value", "new_value"),
        [(incident.pk, "major", {"nested": [1, "two"]})],
    )

    row = incident.timeline.get(kind=EventKind.CHANGED)
    assert row.old_value == "major"
    assert row.new_value == {"nested": [1, "two"]}


def test_many_rows_go_in_as_few_statements_as_the_database_allows(world: World) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Empty", check_result_ids=[world.orders_fail.pk]
    )
    rows = [(incident.pk, f"comment {n}") for n in range(2500)]

    with CaptureQueriesContext(connection) as captured:
        insert_rows(
            TimelineEvent, {"kind": EventKind.COMMENT, "created_at": AT}, ("incident_id", "text"), rows
        )

    assert incident.timeline.filter(kind=EventKind.COMMENT).count() == 2500
    limit = connection.features.max_query_params
    # Every column but the id and those left to their database default.
    columns = len(
        [f for f in TimelineEvent._meta.concrete_fields if not f.primary_key and f.db_default is NOT_PROVIDED]
    )
    # SQLite: chunks under its limit; PostgreSQL: one statement of an array per column.
    expected = -(-2500 // (limit // columns)) if limit else 1
    assert len(captured) == expected


@pytest.mark.django_db
def test_nothing_to_insert_is_no_statement() -> None:
    with CaptureQueriesContext(connection) as captured:
        assert insert_rows(TimelineEvent, {"kind": EventKind.COMMENT}, ("incident_id",), []) == 0
    assert len(captured) == 0


def test_an_unknown_field_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="has no fields colour"):
        insert_rows(TimelineEvent, {"colour": "red"}, ("incident_id",), [(1,)])


def test_rows_that_would_break_a_unique_constraint_can_be_left_out(world: World) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Empty", check_result_ids=[world.orders_fail.pk]
    )
    linked = (incident.pk, world.orders_fail.pk)
    new = (incident.pk, world.orders_fail_2.pk)

    insert_rows(
        IncidentCheckResult,
        {"added_at": AT},
        ("incident_id", "check_result_id"),
        [linked, new],
        ignore_conflicts=True,
    )

    assert sorted(incident.links.values_list("check_result_id", flat=True)) == sorted(
        [world.orders_fail.pk, world.orders_fail_2.pk]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(IncidentCheckResult, {"added_at": AT}, ("incident_id", "check_result_id"), [linked])
