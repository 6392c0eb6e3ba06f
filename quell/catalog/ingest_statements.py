"""The statements with which quell.catalog.ingest stores a scan's checks and results.

A scan of 1,000 checks costs a fixed number of statements, not one or more per check: the checks
are read, created and re-described in batches, the results inserted with their values prepared
once, and the checks' newest outcomes stored by one parameterised UPDATE (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from django.db import connection
from django.db.models import Q

from quell.catalog.models import Check, CheckResult, Dataset


class DescribedCheck(Protocol):
    """How a scan describes a check (quell.catalog.ingest.CheckInput): named here by shape, so that these
    statements import nothing of the ingest that calls them."""

    name: str
    column: str
    definition: str
    check_type: str
    attributes: dict[str, Any]
    metric_identities: list[str]
    location: dict[str, Any]


# --- Checks ---------------------------------------------------------------------------------------

_DESCRIBED_BY_NEWEST_SCAN = (
    "name",
    "column",
    "definition",
    "check_type",
    "attributes",
    "metric_identities",
    "location",
)


# Checks looked up per statement; keeps every statement well under SQLite's variable limit.
_CHECK_LOOKUP_BATCH = 500


def _find_checks(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Check]:
    found: dict[tuple[int, str], Check] = {}
    for start in range(0, len(keys), _CHECK_LOOKUP_BATCH):
        by_dataset: dict[int, list[str]] = {}
        for dataset_id, identity in keys[start : start + _CHECK_LOOKUP_BATCH]:
            by_dataset.setdefault(dataset_id, []).append(identity)
        condition = Q()
        for dataset_id, identities in by_dataset.items():
            condition |= Q(dataset_id=dataset_id, identity__in=identities)
        for check in Check.objects.filter(condition):
            found[(check.dataset_id, check.identity)] = check
    return found


def upsert_checks(
    described: Mapping[tuple[int, str], tuple[Dataset, DescribedCheck]], source: str
) -> dict[tuple[int, str], Check]:
    """The scan's checks, created where new and re-described by this scan where they exist.

    A scan of 1,000 checks costs one read, one INSERT for the new ones and one re-read, where a
    get_or_create per check cost 1,000 round trips. A check another scan creates at the same time is
    skipped by the INSERT (ignore_conflicts: ON CONFLICT DO NOTHING, which on PostgreSQL waits for
    that scan to commit) and read back like one that existed.
    """
    keys = list(described)
    checks = _find_checks(keys)
    missing = [key for key in keys if key not in checks]
    if missing:
        Check.objects.bulk_create(
            [
                Check(
                    dataset=described[key][0],
                    identity=key[1],
                    name=check_input.name,
                    column=check_input.column,
                    definition=check_input.definition,
                    check_type=check_input.check_type,
                    attributes=check_input.attributes,
                    metric_identities=check_input.metric_identities,
                    location=check_input.location,
                    source=source,
                )
                for key in missing
                for check_input in [described[key][1]]
            ],
            ignore_conflicts=True,
        )
        checks.update(_find_checks(missing))
    changed: list[Check] = []
    for key, check in checks.items():
        check.dataset = described[key][0]
        # The newest scan describes the check as it is now (a just-created check already matches).
        check_input = described[key][1]
        differs = False
        for attr in _DESCRIBED_BY_NEWEST_SCAN:
            value = getattr(check_input, attr)
            if value and getattr(check, attr) != value:
                setattr(check, attr, value)
                differs = True
        if differs:
            changed.append(check)
    if changed:
        Check.objects.bulk_update(changed, list(_DESCRIBED_BY_NEWEST_SCAN))
    return checks


# --- Results --------------------------------------------------------------------------------------


def insert_results(results: list[CheckResult]) -> None:
    """INSERT results and give each its id, as bulk_create does, with the values prepared here.

    bulk_create compiled each of the nine values of each result through the ORM's insert compiler:
    a third of a 1,000-check ingest on SQLite. The values that need it are still converted by their
    field (get_db_prep_save), the times once per distinct time. The statements are bulk_create's:
    on PostgreSQL one INSERT of an array per column (UNNEST), elsewhere multi-row INSERTs; both
    RETURNING the ids in the order of the rows.
    """
    if not results:
        return
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite before 3.35
        CheckResult.objects.bulk_create(results)
        return
    meta = CheckResult._meta
    at_field = meta.get_field("data_timestamp")
    value_field = meta.get_field("value")
    diagnostics_field = meta.get_field("diagnostics")
    times: dict[datetime, Any] = {}

    def at(moment: datetime) -> Any:
        if moment not in times:
            times[moment] = at_field.get_db_prep_save(moment, connection)
        return times[moment]

    rows = [
        (
            r.check_ref_id,
            r.dataset_id,
            r.scan_id,
            r.outcome,
            value_field.get_db_prep_save(r.value, connection),
            diagnostics_field.get_db_prep_save(r.diagnostics, connection),
            r.measurement_id,
            at(r.data_timestamp),
            at(r.created_at),
        )
        for r in results
    ]
    ids: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                _INSERT_RESULTS + _UNNEST_RESULTS, [list(column) for column in zip(*rows, strict=True)]
            )
            ids += [row[0] for row in cursor.fetchall()]
        else:
            for start in range(0, len(rows), _RESULT_INSERT_BATCH):
                batch = rows[start : start + _RESULT_INSERT_BATCH]
                values = ", ".join([_RESULT_PLACEHOLDERS] * len(batch))
                cursor.execute(
                    f"{_INSERT_RESULTS} VALUES {values} RETURNING id", [v for row in batch for v in row]
                )
                ids += [row[0] for row in cursor.fetchall()]
    for result, pk in zip(results, ids, strict=True):
        result.pk = pk
        result._state.adding = False
        result._state.db = connection.alias


_INSERT_RESULTS = (
    "INSERT INTO catalog_checkresult (check_id, dataset_id, scan_id, outcome, value, diagnostics, "
    "measurement_id, data_timestamp, created_at)"
)


_UNNEST_RESULTS = (
    " SELECT * FROM UNNEST((%s)::bigint[], (%s)::bigint[], (%s)::bigint[], (%s)::varchar[], "
    "(%s)::double precision[], (%s)::jsonb[], (%s)::bigint[], (%s)::timestamptz[], (%s)::timestamptz[]) "
    "RETURNING id"
)


_RESULT_PLACEHOLDERS = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


# Rows per multi-row INSERT: nine values each stay under SQLite's 999 variables.
_RESULT_INSERT_BATCH = 110


# --- Newest outcomes ------------------------------------------------------------------------------


def record_last_outcomes(newest: dict[int, CheckResult]) -> None:
    """Store each check's newest outcome, unless a result newer than this scan's got there first.

    One parameterised UPDATE run for every check (executemany: one prepared statement on SQLite, a
    pipeline on PostgreSQL). bulk_update built a CASE expression per check in Python and took three
    quarters of a 1,000-check ingest; the condition on last_result_at also keeps a slower, older
    scan that commits later from putting back an outdated outcome.
    """
    if not newest:
        return
    at_field = Check._meta.get_field("last_result_at")
    rows = []
    # In id order: two scans updating the same checks lock them in the same order (no deadlock).
    for check_id, row in sorted(newest.items(), key=lambda item: item[0]):
        at = at_field.get_db_prep_save(row.data_timestamp, connection)
        rows.append((row.outcome, at, check_id, at))
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE catalog_check SET last_outcome = %s, last_result_at = %s "
            "WHERE id = %s AND (last_result_at IS NULL OR last_result_at <= %s)",
            rows,
        )
