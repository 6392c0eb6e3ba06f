"""Inserting many rows that share most of their values, without a model instance per row.

bulk_create builds a model instance for every row and prepares every value of every row through
the SQL compiler. For the timeline events and links of the 150 incidents a nightly scan folds
into, that was most of the fold's time, far more than the INSERTs themselves (docs/performance.md,
"Incident rules on ingest"). Here the values all rows share (the time, the actor, the kind) are
prepared once, each row's own values (ids) one by one, and the rows go in one INSERT of an
array per column on PostgreSQL, and as few multi-row INSERTs as SQLite's parameter limit allows.

For rows whose ids the caller does not need back. A field the caller does not give gets its
default (prepared once), or is left to its database default; a field that sets itself on save
(auto_now) must be given, since no save runs here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import AutoField, BigAutoField, DateField, Field, Model, SmallAutoField
from django.db.models.fields import NOT_PROVIDED

# Rows of one INSERT where the database sets no limit on parameters.
_ROWS_PER_STATEMENT = 1000


def quoted_column(model: type[Model], name: str) -> str:
    """The quoted column of a model's field, for SQL written by hand (names never come from input)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field), name
    assert field.column, name
    return connection.ops.quote_name(field.column)


def insert_rows(
    model: type[Model],
    shared: Mapping[str, Any],
    varying: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> int:
    """INSERT one row of `model` per item of `rows`: the values of `varying` (field attnames, such
    as "incident_id") in that order, and `shared` for every row. With `ignore_conflicts`, a row that
    would break a unique constraint is left out (ON CONFLICT DO NOTHING, PostgreSQL and SQLite).
    Returns the rows given."""
    fields = {field.attname: field for field in model._meta.concrete_fields if isinstance(field, Field)}
    unknown = (set(shared) | set(varying)) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {', '.join(sorted(unknown))}")
    constants: dict[str, Any] = {}
    for attname, field in fields.items():
        if attname in varying:
            continue
        if attname in shared:
            constants[attname] = field.get_db_prep_save(shared[attname], connection)
        elif (
            isinstance(field, AutoField | BigAutoField | SmallAutoField)
            or field.db_default is not NOT_PROVIDED
        ):
            continue
        elif isinstance(field, DateField) and (field.auto_now or field.auto_now_add):
            raise ValueError(f"Give {model.__name__}.{attname}: it is set on save, and nothing is saved here")
        else:
            constants[attname] = field.get_db_prep_save(field.get_default(), connection)
    columns = [*varying, *constants]
    prepare = [fields[attname].get_db_prep_save for attname in varying]
    own = [[prep(value, connection) for prep, value in zip(prepare, row, strict=True)] for row in rows]
    if not own:
        return 0
    quote = connection.ops.quote_name
    into = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(fields[a].column or a) for a in columns)}) "
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # An array per varying column, as bulk_create does there: a statement of a few parameters,
            # where one per value cost psycopg 2-3 ms to parse for a few hundred rows.
            types = [(fields[attname].db_type(connection) or "text").split("(")[0] for attname in varying]
            arrays = ", ".join(f"(%s)::{db_type}[]" for db_type in types)
            shared_sql = "".join(", %s" for _ in constants)
            by_column = [list(column) for column in zip(*own, strict=True)]
            cursor.execute(
                f"{into}SELECT u.*{shared_sql} FROM UNNEST({arrays}) AS u{tail}",  # noqa: S608 (names from the model)
                [*constants.values(), *by_column],
            )
            return len(own)
        limit = connection.features.max_query_params
        per_statement = max(1, limit // len(columns)) if limit else _ROWS_PER_STATEMENT
        row_sql = f"({', '.join(['%s'] * len(columns))})"
        same = list(constants.values())
        for start in range(0, len(own), per_statement):
            chunk = own[start : start + per_statement]
            cursor.execute(
                f"{into}VALUES {', '.join([row_sql] * len(chunk))}{tail}",
                [value for row in chunk for value in (*row, *same)],
            )
    return len(own)
