"""Migration operations for big tables: indexes that are built without blocking writers.

`AddIndexOnline` builds an index with CREATE INDEX CONCURRENTLY on PostgreSQL, so web and worker
processes still running the previous release keep reading and writing the table while it is built
(a plain CREATE INDEX holds a lock that blocks every write for the whole build, minutes at
1,000,000 rows). SQLite has no such mode; its CREATE INDEX is plain (SQLite serves a team's
installation, where a build of seconds is acceptable). Migrations using these operations on
PostgreSQL must say `atomic = False`: CONCURRENTLY cannot run inside a transaction.

Each operation changes the migration state exactly as its ordinary counterpart does, so the index
is still declared in the model's Meta.indexes and `makemigrations --check` stays clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations import AddIndex, RemoveIndex, RunSQL
from django.db.migrations.state import ProjectState


def _ensure_not_in_transaction(operation: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql" and schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"{type(operation).__name__} builds indexes concurrently on PostgreSQL, which cannot run "
            "inside a transaction: set atomic = False on the migration."
        )


def _drop_invalid_index(schema_editor: BaseDatabaseSchemaEditor, name: str) -> None:
    """Drop an index of this name left INVALID by an interrupted concurrent build, so a retry can build it."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
            "WHERE pg_class.relname = %s AND NOT pg_index.indisvalid",
            [name],
        )
        invalid = cursor.fetchone() is not None
    if invalid:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


def _build(operation: object, schema_editor: BaseDatabaseSchemaEditor, model: Any, index: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _ensure_not_in_transaction(operation, schema_editor)
        _drop_invalid_index(schema_editor, str(index.name))
        schema_editor.add_index(model, index, concurrently=True)  # type: ignore[call-arg]
    else:
        schema_editor.add_index(model, index)


def _drop(operation: object, schema_editor: BaseDatabaseSchemaEditor, model: Any, index: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _ensure_not_in_transaction(operation, schema_editor)
        schema_editor.remove_index(model, index, concurrently=True)  # type: ignore[call-arg]
    else:
        schema_editor.remove_index(model, index)


class AddIndexOnline(AddIndex):
    """AddIndex that does not block writes on PostgreSQL (CREATE INDEX CONCURRENTLY)."""

    atomic = False

    def describe(self) -> str:
        return f"Create index {self.index.name} on {self.model_name} without blocking writes"

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _build(self, schema_editor, model, self.index)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _drop(self, schema_editor, model, self.index)


class RemoveIndexOnline(RemoveIndex):
    """RemoveIndex that does not block reads and writes on PostgreSQL (DROP INDEX CONCURRENTLY)."""

    atomic = False

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            _drop(self, schema_editor, model, index)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            _build(self, schema_editor, model, index)


class RunSQLFor(RunSQL):
    """SQL that differs per database: `sqlite` and `postgresql` lists, each run only on its own vendor.

    For database objects Django's state does not model (full-text tables, triggers, expression
    indexes of one vendor). On PostgreSQL, statements with CONCURRENTLY need `atomic = False`.
    """

    def __init__(
        self,
        *,
        sqlite: Sequence[str] = (),
        postgresql: Sequence[str] = (),
        reverse_sqlite: Sequence[str] = (),
        reverse_postgresql: Sequence[str] = (),
        description: str = "Vendor-specific SQL",
        **kwargs: Any,
    ) -> None:
        self.description = description
        self.per_vendor = {"sqlite": list(sqlite), "postgresql": list(postgresql)}
        self.reverse_per_vendor = {"sqlite": list(reverse_sqlite), "postgresql": list(reverse_postgresql)}
        super().__init__(sql=RunSQL.noop, reverse_sql=RunSQL.noop, **kwargs)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "sqlite": self.per_vendor["sqlite"],
            "postgresql": self.per_vendor["postgresql"],
            "reverse_sqlite": self.reverse_per_vendor["sqlite"],
            "reverse_postgresql": self.reverse_per_vendor["postgresql"],
            "description": self.description,
        }
        return (self.__class__.__qualname__, [], kwargs)

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return True

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._run(schema_editor, self.per_vendor)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._run(schema_editor, self.reverse_per_vendor)

    def _run(self, schema_editor: BaseDatabaseSchemaEditor, statements: dict[str, list[str]]) -> None:
        vendor = schema_editor.connection.vendor
        if vendor not in statements:
            raise NotSupportedError(f"No SQL for {vendor} in {self.describe()}.")
        for statement in statements[vendor]:
            schema_editor.execute(statement, params=None)

    def describe(self) -> str:
        return self.description
