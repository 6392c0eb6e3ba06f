"""Counts of incidents per status and severity, kept up to date instead of counted on every page view.

Rows of IncidentTally, one per status and severity ("bucket") in each of:
- org-wide (what an admin sees);
- Everyone's: the incidents whose set holds a dataset the Everyone group can view, so every member
  sees them;
- per DatasetSet (the exact combination of datasets an incident is linked to).

An incident is visible to whoever can view any of its datasets, and each incident is in exactly one
set, so a member's counts are Everyone's rows plus the rows of the sets that hold no dataset
Everyone can view and share a dataset with those the member holds a responsibility on (in person or
through a group). That sum reads a few sets: a member's own datasets, not the thousands Everyone
sees (at 1,000,000 incidents, summing every set a member could see read about 110,000 rows).

The incidents' domain events call `incidents_created`, `buckets_changed` and `datasets_changed`
(incidents/reactions.py), inside the transaction of the change they count; each is two upserts when
the sets exist, however many incidents a service changed at once. The set's rows are
written first, then the org-wide and Everyone's rows, each statement locking its rows in a fixed
order, so two transactions never wait on each other's rows in opposite orders (no deadlock on
PostgreSQL). Last, the open incident counts on the datasets' rows change when the incident opens,
closes or gains datasets while open (quell.catalog.counters, which locks them in id order).

Whether a set counts for Everyone (`DatasetSet.public`) changes when a dataset's responsibilities
do (the catalog's ResponsibilitiesChanged event); `visibility_changed` then moves the sets' counts
in or out of Everyone's rows. On PostgreSQL it first locks the tally table against writes (SHARE ROW
EXCLUSIVE), and every incident write reads
`public`, or creates a set, only in a statement after its first INSERT into the table (which takes
the table's ROW EXCLUSIVE lock even when it writes no row). So either the write waited for the
change and reads the committed new flags, or the change waited for the write and its recount sees
the write's committed counts. (On SQLite a write transaction holds the whole database.)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model, QuerySet, Sum

from quell.accounts import permissions
from quell.accounts.models import Responsibility
from quell.catalog import counters
from quell.incidents.models import OPEN_STATUSES, DatasetSet, DatasetSetMember, IncidentTally
from quell.lib.bulk import quoted_column

Bucket = tuple[str, str]  # (status, severity)


def set_key(dataset_ids: Iterable[int]) -> str:
    return hashlib.sha256(",".join(str(i) for i in sorted(set(dataset_ids))).encode()).hexdigest()


def public_dataset_ids() -> QuerySet[Responsibility, int]:
    """A subquery of the datasets the Everyone group can view: a set holding one counts for Everyone."""
    return Responsibility.objects.filter(
        group__is_everyone=True, **{f"role__{permissions.VIEW}": True}
    ).values_list("dataset_id", flat=True)


def _create_set(key: str, dataset_ids: list[int]) -> int:
    try:
        with transaction.atomic():
            public = Responsibility.objects.filter(
                dataset_id__in=dataset_ids, group__is_everyone=True, **{f"role__{permissions.VIEW}": True}
            ).exists()
            created = DatasetSet.objects.create(key=key, public=public)
            DatasetSetMember.objects.bulk_create(
                DatasetSetMember(dataset_set=created, dataset_id=ds) for ds in dataset_ids
            )
            return created.pk
    except IntegrityError:
        # Another transaction created the same set first (PostgreSQL waited for it to commit).
        return DatasetSet.objects.values_list("pk", flat=True).get(key=key)


def _add_to_sets(changes: list[tuple[list[int], Bucket, int]]) -> None:
    """Apply count changes (datasets of the set, bucket, change), creating sets that are new.

    One statement when the sets exist (the common case): each set is looked up by its key inside
    the INSERT. It is also the transaction's first write to the tally table (see the module's
    docstring), so sets are created only after it.
    """
    # One row per set and bucket: PostgreSQL refuses an upsert that meets the same row twice.
    totals: Counter[tuple[tuple[int, ...], Bucket]] = Counter()
    for ids, bucket, change in changes:
        if ids and change:
            totals[(tuple(sorted(set(ids))), bucket)] += change
    changes = [(list(ids), bucket, change) for (ids, bucket), change in totals.items() if change]
    rows = sorted((set_key(ids), *bucket, change) for ids, bucket, change in changes)
    if not rows:
        return
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    set_id, key = quoted_column(DatasetSet, "id"), quoted_column(DatasetSet, "key")
    # VALUES columns are named column1, column2... on both databases. ORDER BY keeps the fixed
    # lock order (statuses and severities are lowercase ASCII, so every collation sorts them as
    # Python does).
    from_sets = (
        f"SELECT s.{set_id}, %s, v.column2, v.column3, v.column4 FROM {_table(DatasetSet)} s, "  # noqa: S608
        f"(VALUES {values}) v WHERE s.{key} = v.column1 ORDER BY s.{set_id}, v.column2, v.column3"
    )
    with connection.cursor() as cursor:
        cursor.execute(_upsert(from_sets, per_set=True), [False] + [v for row in rows for v in row])
        written = cursor.rowcount
    if written == len(rows):
        return
    # None written: no set exists (the usual case of a new combination), nothing to look up.
    found = (
        dict(DatasetSet.objects.filter(key__in={row[0] for row in rows}).values_list("key", "pk"))
        if written
        else {}
    )
    missing = [(ids, bucket, change) for ids, bucket, change in changes if ids and set_key(ids) not in found]
    if not missing:
        return
    new_rows: Counter[tuple[int, str, str]] = Counter()
    for ids, (status, severity), change in missing:
        key_of = set_key(ids)
        if key_of not in found:
            found[key_of] = _create_set(key_of, sorted(set(ids)))
        new_rows[(found[key_of], status, severity)] += change
    ordered = sorted(new_rows.items())
    with connection.cursor() as cursor:
        cursor.execute(
            _upsert(f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(ordered))}", per_set=True),
            [
                v
                for (set_pk, status, severity), change in ordered
                for v in (set_pk, False, status, severity, change)
            ],
        )


def _add_org_wide(changes: list[tuple[list[int], Bucket, int]]) -> None:
    """Apply count changes (datasets of the incident's set, bucket, change) to the org-wide rows, and
    to Everyone's rows for each change whose set counts for Everyone (read in this same statement).

    One statement for any number of incidents: the rows are summed per bucket (PostgreSQL refuses
    an upsert that meets the same row twice), and a bucket whose changes cancel out is left alone.
    """
    org_wide: Counter[Bucket] = Counter()
    everyone: Counter[tuple[str, Bucket]] = Counter()
    for ids, bucket, change in changes:
        org_wide[bucket] += change
        if ids:
            everyone[(set_key(ids), bucket)] += change
    rows = [(False, *bucket, change, "") for bucket, change in sorted(org_wide.items()) if change]
    rows += [(True, *bucket, change, key) for (key, bucket), change in sorted(everyone.items()) if change]
    if not rows:
        return
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    table, key, public = (
        _table(DatasetSet),
        quoted_column(DatasetSet, "key"),
        quoted_column(DatasetSet, "public"),
    )
    from_values = (
        f"SELECT NULL, v.column1, v.column2, v.column3, SUM(v.column4) FROM (VALUES {values}) v "  # noqa: S608
        f"WHERE NOT v.column1 OR EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = v.column5 AND p.{public}) "
        "GROUP BY v.column1, v.column2, v.column3 HAVING SUM(v.column4) <> 0 "
        "ORDER BY v.column1, v.column2, v.column3"
    )
    with connection.cursor() as cursor:
        cursor.execute(_upsert(from_values, per_set=False), [v for row in rows for v in row])


def _is_public() -> str:
    """SQL: the set whose key is the next parameter counts for Everyone (names are quoted names)."""
    table, key, public = (
        _table(DatasetSet),
        quoted_column(DatasetSet, "key"),
        quoted_column(DatasetSet, "public"),
    )
    return f"EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = %s AND p.{public})"  # noqa: S608


def _move_everyone(old_ids: list[int], new_ids: list[int], bucket: Bucket) -> None:
    """An incident moved from the set of `old_ids` to that of `new_ids`: Everyone's count of its
    bucket changes by one when exactly one of the two sets counts for Everyone."""
    change = f"(CASE WHEN {_is_public()} THEN 1 ELSE 0 END) - (CASE WHEN {_is_public()} THEN 1 ELSE 0 END)"
    rows = f"SELECT NULL, %s, %s, %s, d.change FROM (SELECT {change} AS change) d WHERE d.change <> 0"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            _upsert(rows, per_set=False),
            [True, *bucket, set_key(new_ids) if new_ids else "", set_key(old_ids) if old_ids else ""],
        )


def _upsert(rows_sql: str, *, per_set: bool) -> str:
    """INSERT tally rows (set id, everyone, status, severity, change) given by `rows_sql`; a row that
    exists gets the change added to its count.

    Each partial unique constraint (rows without a set, per-set rows) is its own conflict target,
    and PostgreSQL takes one per statement. (Django's bulk_create(update_conflicts=True) cannot add
    to the existing count, hence the SQL.)
    """
    table = _table(IncidentTally)
    set_id, everyone, status, severity, count = (
        quoted_column(IncidentTally, name)
        for name in ("dataset_set", "everyone", "status", "severity", "count")
    )
    target = (
        f"({set_id}, {status}, {severity}) WHERE {set_id} IS NOT NULL"
        if per_set
        else f"({everyone}, {status}, {severity}) WHERE {set_id} IS NULL"
    )
    return (
        f"INSERT INTO {table} ({set_id}, {everyone}, {status}, {severity}, {count}) {rows_sql} "
        f"ON CONFLICT {target} DO UPDATE SET {count} = {table}.{count} + EXCLUDED.{count}"
    )


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _lock_against_writes() -> None:
    """Wait for the incident writes under way and hold new ones until this transaction ends
    (PostgreSQL; SHARE ROW EXCLUSIVE conflicts with every write to the table and with itself)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {_table(IncidentTally)} IN SHARE ROW EXCLUSIVE MODE")


def _is_open(bucket: Bucket) -> bool:
    return bucket[0] in OPEN_STATUSES


def incident_created(dataset_ids: Iterable[int], bucket: Bucket) -> None:
    incidents_created([(dataset_ids, bucket)])


def incidents_created(created: Sequence[tuple[Iterable[int], Bucket]]) -> None:
    """Incidents were opened (each one's datasets and bucket): three statements however many."""
    changes = [(sorted(set(ids)), bucket, 1) for ids, bucket in created]
    _add_to_sets(changes)
    _add_org_wide(changes)
    opened: Counter[int] = Counter()
    for ids, bucket, _ in changes:
        if _is_open(bucket):
            opened.update(ids)
    counters.add_open_incidents(dict(opened))


def bucket_changed(dataset_ids: Iterable[int], old: Bucket, new: Bucket) -> None:
    """The incident's status or severity changed."""
    buckets_changed([(dataset_ids, old, new)])


def buckets_changed(changed: Sequence[tuple[Iterable[int], Bucket, Bucket]]) -> None:
    """Incidents' statuses or severities changed (each one's datasets, old and new bucket)."""
    changes: list[tuple[list[int], Bucket, int]] = []
    opened: Counter[int] = Counter()
    for dataset_ids, old, new in changed:
        if old == new:
            continue
        ids = sorted(set(dataset_ids))
        changes += [(ids, old, -1), (ids, new, 1)]
        if _is_open(old) != _is_open(new):
            for dataset_id in ids:
                opened[dataset_id] += 1 if _is_open(new) else -1
    if not changes:
        return
    _add_to_sets(changes)
    _add_org_wide(changes)
    counters.add_open_incidents(dict(opened))


def datasets_changed(old_ids: Iterable[int], new_ids: Iterable[int], bucket: Bucket) -> None:
    old, new = sorted(set(old_ids)), sorted(set(new_ids))
    if old == new:
        return
    _add_to_sets([(old, bucket, -1), (new, bucket, 1)])
    _move_everyone(old, new, bucket)
    if _is_open(bucket):
        counters.add_open_incidents(
            {**dict.fromkeys(set(old) - set(new), -1), **dict.fromkeys(set(new) - set(old), 1)}
        )


def visibility_changed(dataset_ids: Iterable[int]) -> None:
    """Who can view these datasets changed: refresh whether their sets count for Everyone and move
    those sets' counts in or out of Everyone's rows. Called in the transaction of the change."""
    ids = sorted(set(dataset_ids))
    if not ids:
        return
    _lock_against_writes()
    sets = dict(DatasetSet.objects.filter(members__dataset_id__in=ids).distinct().values_list("pk", "public"))
    if not sets:
        return
    now_public = set(
        DatasetSetMember.objects.filter(dataset_set_id__in=list(sets), dataset_id__in=public_dataset_ids())
        .values_list("dataset_set_id", flat=True)
        .distinct()
    )
    gained = [pk for pk, public in sets.items() if not public and pk in now_public]
    lost = [pk for pk, public in sets.items() if public and pk not in now_public]
    if not gained and not lost:
        return
    DatasetSet.objects.filter(pk__in=gained).update(public=True)
    DatasetSet.objects.filter(pk__in=lost).update(public=False)
    moved: Counter[Bucket] = Counter()
    for set_pk, status, severity, count in IncidentTally.objects.filter(
        dataset_set_id__in=gained + lost
    ).values_list("dataset_set_id", "status", "severity", "count"):
        moved[(status, severity)] += count if set_pk in now_public else -count
    rows = sorted((bucket, change) for bucket, change in moved.items() if change)
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(
                _upsert(f"VALUES {', '.join(['(NULL, %s, %s, %s, %s)'] * len(rows))}", per_set=False),
                [v for (status, severity), change in rows for v in (True, status, severity, change)],
            )


def org_wide() -> QuerySet[IncidentTally]:
    """The rows that count every incident (what an admin sees)."""
    return IncidentTally.objects.filter(dataset_set__isnull=True, everyone=False)


def touching(dataset_ids: QuerySet[Any, int] | list[int]) -> QuerySet[IncidentTally]:
    """The rows that count the incidents linked to at least one of these datasets (each once)."""
    sets = DatasetSetMember.objects.filter(dataset_id__in=dataset_ids).values("dataset_set_id")
    return IncidentTally.objects.filter(dataset_set_id__in=sets)


def visible_to_member(held: QuerySet[Any, int]) -> QuerySet[IncidentTally]:
    """The rows that count the incidents a member sees, given the datasets they hold a
    responsibility on in person or through a group (not through Everyone): Everyone's rows, plus
    the sets that do not count for Everyone and hold one of those datasets."""
    private_sets = DatasetSetMember.objects.filter(dataset_id__in=held, dataset_set__public=False).values(
        "dataset_set_id"
    )
    # The two kinds of rows as a UNION of ids, not an OR: with the OR, PostgreSQL scanned every
    # counter row (190,000 at 1,000,000 incidents) instead of looking up the few it needs.
    everyone = IncidentTally.objects.filter(dataset_set__isnull=True, everyone=True).values("pk")
    private = IncidentTally.objects.filter(dataset_set_id__in=private_sets).values("pk")
    return IncidentTally.objects.filter(pk__in=everyone.union(private, all=True))


def summed(
    rows: QuerySet[IncidentTally],
    by: str = "status",
    *,
    statuses: Iterable[str] = (),
    severities: Iterable[str] = (),
) -> dict[str, int]:
    """The counts of these rows per status (or per severity), of the given statuses and severities
    only when given."""
    assert by in ("status", "severity"), by
    if statuses := list(statuses):
        rows = rows.filter(status__in=statuses)
    if severities := list(severities):
        rows = rows.filter(severity__in=severities)
    totals = rows.order_by().values_list(by).annotate(n=Sum("count"))
    return {value: int(n) for value, n in totals if n}


def rebuild() -> None:
    """Recompute every tally from the incidents: after bulk loads, and to repair by hand.

    Reads incident ids, statuses and dataset links once (about 2,000,000 small rows at 1,000,000
    incidents) and writes the sets and counts in bulk, inside one transaction.
    """
    with transaction.atomic():
        _lock_against_writes()
        IncidentTally.objects.all().delete()
        DatasetSetMember.objects.all().delete()
        DatasetSet.objects.all().delete()
        datasets: dict[int, list[int]] = {}
        with connection.cursor() as cursor:
            cursor.execute("SELECT incident_id, dataset_id FROM incidents_incidentdataset")
            for incident_id, dataset_id in cursor.fetchall():
                datasets.setdefault(incident_id, []).append(dataset_id)
            cursor.execute("SELECT id, status, severity FROM incidents_incident")
            buckets = cursor.fetchall()
        public = set(public_dataset_ids())
        org: Counter[Bucket] = Counter()
        everyone: Counter[Bucket] = Counter()
        per_key: Counter[tuple[str, Bucket]] = Counter()
        members: dict[str, list[int]] = {}
        for incident_id, status, severity in buckets:
            org[(status, severity)] += 1
            ids = sorted(set(datasets.get(incident_id, ())))
            if ids:
                key = set_key(ids)
                members.setdefault(key, ids)
                per_key[(key, (status, severity))] += 1
                if not public.isdisjoint(ids):
                    everyone[(status, severity)] += 1
        created = DatasetSet.objects.bulk_create(
            (DatasetSet(key=key, public=not public.isdisjoint(ids)) for key, ids in members.items()),
            batch_size=5000,
        )
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
            [
                IncidentTally(dataset_set_id=None, status=status, severity=severity, count=n)
                for (status, severity), n in org.items()
            ]
            + [
                IncidentTally(dataset_set_id=None, everyone=True, status=status, severity=severity, count=n)
                for (status, severity), n in everyone.items()
            ]
            + [
                IncidentTally(dataset_set_id=set_ids[key], status=status, severity=severity, count=n)
                for (key, (status, severity)), n in per_key.items()
            ],
            batch_size=5000,
        )
