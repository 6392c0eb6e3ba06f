"""Counts of incidents per status, kept up to date instead of counted on every page view.

Rows of IncidentTally: one per status org-wide (what an admin sees) and one per status and
DatasetSet, the exact combination of datasets an incident is linked to. An incident is visible to
whoever can view any of its datasets, so a member's counts are the sums over the sets that share a
dataset with the ones they can view: each incident is in exactly one set, so it is counted once.

The incident services call `incident_created`, `status_changed` and `datasets_changed` inside the
transaction of the change they count; each is one or two upserts when the sets exist. Deltas are
applied in one fixed order (org-wide first, then by set and status) so two transactions never wait
on each other's tally rows in opposite orders (no deadlock on PostgreSQL).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Model, QuerySet, Sum

from quell.incidents.models import DatasetSet, DatasetSetMember, IncidentTally

Delta = dict[tuple[int | None, str], int]


def set_key(dataset_ids: Iterable[int]) -> str:
    return hashlib.sha256(",".join(str(i) for i in sorted(set(dataset_ids))).encode()).hexdigest()


def dataset_set_for(dataset_ids: Iterable[int]) -> int | None:
    """The id of the DatasetSet of exactly these datasets, created if new; None for no datasets."""
    return dataset_sets_for(dataset_ids)[0]


def dataset_sets_for(*dataset_id_lists: Iterable[int]) -> list[int | None]:
    """`dataset_set_for` for several combinations, looked up in one query."""
    wanted = [sorted(set(ids)) for ids in dataset_id_lists]
    keys = [set_key(ids) if ids else None for ids in wanted]
    found = dict(DatasetSet.objects.filter(key__in=[key for key in keys if key]).values_list("key", "pk"))
    for ids, key in zip(wanted, keys, strict=True):
        if key is not None and key not in found:
            found[key] = _create_set(key, ids)
    return [found[key] if key is not None else None for key in keys]


def _create_set(key: str, dataset_ids: list[int]) -> int:
    try:
        with transaction.atomic():
            created = DatasetSet.objects.create(key=key)
            DatasetSetMember.objects.bulk_create(
                DatasetSetMember(dataset_set=created, dataset_id=ds) for ds in dataset_ids
            )
            return created.pk
    except IntegrityError:
        # Another transaction created the same set first (PostgreSQL waited for it to commit).
        return DatasetSet.objects.values_list("pk", flat=True).get(key=key)


def add(deltas: Delta) -> None:
    """Apply count changes keyed by (dataset set id or None for org-wide, status).

    At most two statements: the org-wide rows, then the per-set rows, each an INSERT of every row
    that adds to the count of a row already there. The database processes the VALUES in order, so
    the rows are locked in the module's fixed order.
    """
    changes = sorted(
        ((set_id, status, change) for (set_id, status), change in deltas.items() if change),
        key=lambda row: (row[0] is not None, row[0] or 0, row[1]),
    )
    org_wide = [(status, change) for set_id, status, change in changes if set_id is None]
    per_set = [(set_id, status, change) for set_id, status, change in changes if set_id is not None]
    with connection.cursor() as cursor:
        if org_wide:
            values = ", ".join(["(NULL, %s, %s)"] * len(org_wide))
            cursor.execute(_upsert(f"VALUES {values}", org_wide=True), [v for row in org_wide for v in row])
        if per_set:
            values = ", ".join(["(%s, %s, %s)"] * len(per_set))
            cursor.execute(_upsert(f"VALUES {values}", org_wide=False), [v for row in per_set for v in row])


def _add_to_set(dataset_ids: Iterable[int], changes: dict[str, int]) -> None:
    """Apply count changes by status to the set of exactly these datasets, creating it if new.

    One statement when the set exists (the common case): the set is looked up inside the INSERT.
    """
    ids = sorted(set(dataset_ids))
    rows = sorted((status, change) for status, change in changes.items() if change)
    if not ids or not rows:
        return
    key = set_key(ids)
    values = ", ".join(["(%s, %s)"] * len(rows))
    # VALUES columns are named column1, column2... on both databases. ORDER BY keeps the fixed
    # lock order (statuses are lowercase ASCII, so every collation sorts them as Python does).
    from_set = (
        f"SELECT s.{_column(DatasetSet, 'id')}, v.column1, v.column2 FROM {_table(DatasetSet)} s, "  # noqa: S608
        f"(VALUES {values}) v WHERE s.{_column(DatasetSet, 'key')} = %s ORDER BY v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(_upsert(from_set, org_wide=False), [v for row in rows for v in row] + [key])
        if cursor.rowcount:
            return
    set_id = _create_set(key, ids)
    add({(set_id, status): change for status, change in rows})


def _upsert(rows_sql: str, *, org_wide: bool) -> str:
    """INSERT tally rows (set id, status, change) given by `rows_sql`; a row that exists gets the change
    added to its count.

    Each partial unique constraint (org-wide rows, per-set rows) is its own conflict target, and
    PostgreSQL takes one per statement. (Django's bulk_create(update_conflicts=True) cannot add to
    the existing count, hence the SQL.)
    """
    table = _table(IncidentTally)
    set_id, status, count = (_column(IncidentTally, name) for name in ("dataset_set", "status", "count"))
    target = (
        f"({status}) WHERE {set_id} IS NULL"
        if org_wide
        else f"({set_id}, {status}) WHERE {set_id} IS NOT NULL"
    )
    return (
        f"INSERT INTO {table} ({set_id}, {status}, {count}) {rows_sql} "
        f"ON CONFLICT {target} DO UPDATE SET {count} = {table}.{count} + EXCLUDED.{count}"
    )


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), name
    assert field.column, name
    return connection.ops.quote_name(field.column)


def incident_created(dataset_ids: Iterable[int], status: str) -> None:
    add({(None, status): 1})
    _add_to_set(dataset_ids, {status: 1})


def status_changed(dataset_ids: Iterable[int], old: str, new: str) -> None:
    if old == new:
        return
    add({(None, old): -1, (None, new): 1})
    _add_to_set(dataset_ids, {old: -1, new: 1})


def datasets_changed(old_ids: Iterable[int], new_ids: Iterable[int], status: str) -> None:
    old_set, new_set = dataset_sets_for(old_ids, new_ids)
    if old_set == new_set:
        return
    deltas: Delta = {}
    if old_set is not None:
        deltas[(old_set, status)] = -1
    if new_set is not None:
        deltas[(new_set, status)] = 1
    add(deltas)


def org_wide() -> dict[str, int]:
    rows = IncidentTally.objects.filter(dataset_set__isnull=True).values_list("status", "count")
    return {status: int(count) for status, count in rows if count}


def touching(dataset_ids: QuerySet[Any, int] | list[int]) -> dict[str, int]:
    """Counts of the incidents linked to at least one of these datasets (each counted once)."""
    sets = DatasetSetMember.objects.filter(dataset_id__in=dataset_ids).values("dataset_set_id")
    rows = (
        IncidentTally.objects.filter(dataset_set_id__in=sets)
        .order_by()
        .values_list("status")
        .annotate(n=Sum("count"))
    )
    return {status: int(n) for status, n in rows if n}


def rebuild() -> None:
    """Recompute every tally from the incidents: after bulk loads, and to repair by hand.

    Reads incident ids, statuses and dataset links once (about 2,000,000 small rows at 1,000,000
    incidents) and writes the sets and counts in bulk, inside one transaction.
    """
    with transaction.atomic():
        IncidentTally.objects.all().delete()
        DatasetSetMember.objects.all().delete()
        DatasetSet.objects.all().delete()
        datasets: dict[int, list[int]] = {}
        with connection.cursor() as cursor:
            cursor.execute("SELECT incident_id, dataset_id FROM incidents_incidentdataset")
            for incident_id, dataset_id in cursor.fetchall():
                datasets.setdefault(incident_id, []).append(dataset_id)
            cursor.execute("SELECT id, status FROM incidents_incident")
            statuses = cursor.fetchall()
        org: Counter[str] = Counter()
        per_key: Counter[tuple[str, str]] = Counter()
        members: dict[str, list[int]] = {}
        for incident_id, status in statuses:
            org[status] += 1
            ids = sorted(set(datasets.get(incident_id, ())))
            if ids:
                key = set_key(ids)
                members.setdefault(key, ids)
                per_key[(key, status)] += 1
        created = DatasetSet.objects.bulk_create((DatasetSet(key=key) for key in members), batch_size=5000)
        set_ids = {row.key: row.pk for row in created}
        if any(pk is None for pk in set_ids.values()):
            set_ids = dict(DatasetSet.objects.values_list("key", "pk"))
        DatasetSetMember.objects.bulk_create(
            (
                DatasetSetMember(dataset_set_id=set_ids[key], dataset_id=ds)
                for key, ids in members.items()
                for ds in ids
            ),
            batch_size=5000,
        )
        IncidentTally.objects.bulk_create(
            [IncidentTally(dataset_set_id=None, status=status, count=n) for status, n in org.items()]
            + [
                IncidentTally(dataset_set_id=set_ids[key], status=status, count=n)
                for (key, status), n in per_key.items()
            ],
            batch_size=5000,
        )
