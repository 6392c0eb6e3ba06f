"""AddIndexOnline builds indexes without blocking writers on PostgreSQL, and plainly on SQLite."""

from __future__ import annotations

import pytest
from django.db import NotSupportedError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from quell.lib.migrations import AddIndexOnline, RemoveIndexOnline

INDEX = models.Index(fields=["resolved_at", "id"], name="incident_resolved_test")


def current_state() -> ProjectState:
    loader = MigrationLoader(connection)
    return loader.project_state()


def indexes_of(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


@pytest.mark.django_db(transaction=True)
def test_an_online_index_is_built_recorded_in_the_state_and_removed_again() -> None:
    before = current_state()
    after = before.clone()
    adding = AddIndexOnline(model_name="incident", index=INDEX)
    adding.state_forwards("incidents", after)

    with CaptureQueriesContext(connection) as queries, connection.schema_editor(atomic=False) as editor:
        adding.database_forwards("incidents", editor, before, after)

    assert "incident_resolved_test" in indexes_of("incidents_incident")
    assert "incident_resolved_test" in [
        i.name for i in after.models["incidents", "incident"].options["indexes"]
    ]
    built = [q["sql"] for q in queries.captured_queries if "incident_resolved_test" in q["sql"]]
    concurrently = connection.vendor == "postgresql"
    assert any(("CONCURRENTLY" in sql) is concurrently for sql in built), built

    removing = RemoveIndexOnline(model_name="incident", name="incident_resolved_test")
    final = after.clone()
    removing.state_forwards("incidents", final)
    with connection.schema_editor(atomic=False) as editor:
        removing.database_forwards("incidents", editor, after, final)

    assert "incident_resolved_test" not in indexes_of("incidents_incident")


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_postgresql_refuses_to_build_concurrently() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("CONCURRENTLY exists on PostgreSQL only")
    before = current_state()
    after = before.clone()
    adding = AddIndexOnline(model_name="incident", index=INDEX)
    adding.state_forwards("incidents", after)

    with (
        pytest.raises(NotSupportedError, match="atomic = False"),
        transaction.atomic(),
        connection.schema_editor(atomic=False) as editor,
    ):
        adding.database_forwards("incidents", editor, before, after)
