"""Counts kept on each dataset's row: its checks, the checks whose newest outcome is warn or fail,
and its open incidents (Dataset.check_count, failing_check_count, open_incident_count).

Lists of datasets show them and the home page lists the datasets that fail without an open
incident; counting them per dataset on every view probed 2,000 failing datasets for an open
incident at 1,000,000 incidents (issue 6).

Who keeps them:
- the ingest recounts the checks of the datasets a scan wrote to (`recount_checks`), after it has
  stored their newest outcomes;
- the incident writes add to the open incidents of the datasets whose count changes
  (`add_open_incidents`, called by quell.incidents.tallies), in the transaction of the change;
- `recount_all` repairs everything from the rows (bulk loads, the migration that added them).

Concurrency on PostgreSQL: two scans of one dataset may update different checks at the same time.
A recount is one statement, and a statement sees what was committed when it started, so each scan
first locks its datasets' rows (in id order, so two scans never wait on each other crosswise) and
recounts in a later statement: the scan that locks last waited for the other to commit, and its
recount sees both. The lock is FOR NO KEY UPDATE, which does not block rows that merely refer to the
dataset (results, incident links). Incident writes add in place (`count = count + change`), which
PostgreSQL applies to the newest row version whoever wrote it last. On SQLite a write transaction
holds the whole database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from quell.catalog.models import FAILING_OUTCOMES


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _lock(ids: list[int]) -> None:
    """Lock these datasets' rows in id order until the transaction ends (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM catalog_dataset WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids]
        )


_RECOUNT_CHECKS = (
    "UPDATE catalog_dataset SET "
    "check_count = (SELECT COUNT(*) FROM catalog_check c WHERE c.dataset_id = catalog_dataset.id), "
    "failing_check_count = (SELECT COUNT(*) FROM catalog_check c "
    "WHERE c.dataset_id = catalog_dataset.id AND c.last_outcome IN ({failing}))"
)


def recount_checks(dataset_ids: Iterable[int]) -> None:
    """Recount the checks of these datasets (called by the ingest, inside its transaction, after it
    has created checks and stored their newest outcomes)."""
    ids = sorted(set(dataset_ids))
    if not ids:
        return
    _lock(ids)
    failing = list(FAILING_OUTCOMES)
    with connection.cursor() as cursor:
        cursor.execute(
            _RECOUNT_CHECKS.format(failing=_placeholders(failing)) + f" WHERE id IN ({_placeholders(ids)})",
            [*failing, *ids],
        )


def add_open_incidents(changes: dict[int, int]) -> None:
    """Add `change` to the open incident count of each dataset (dataset id -> change), in one
    statement; several datasets are locked in id order first on PostgreSQL (see the module)."""
    rows = sorted((pk, change) for pk, change in changes.items() if change)
    if not rows:
        return
    ids = [pk for pk, _ in rows]
    params: list[Any]
    if len({change for _, change in rows}) == 1:
        amount, params = "%s", [rows[0][1]]
    else:
        amount = "CASE id " + " ".join(["WHEN %s THEN %s"] * len(rows)) + " END"
        params = [v for row in rows for v in row]
    update = f"UPDATE catalog_dataset SET open_incident_count = open_incident_count + {amount} WHERE id "  # noqa: S608
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(ids) > 1:
            locked = "SELECT id FROM catalog_dataset WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
            locking_update = f"WITH locked AS ({locked}) {update}IN (SELECT id FROM locked)"  # noqa: S608
            cursor.execute(locking_update, [ids, *params])
        else:
            cursor.execute(f"{update}IN ({_placeholders(ids)})", [*params, *ids])


def recount_all(open_statuses: Iterable[str]) -> None:
    """Recount every dataset's checks and open incidents from the rows (after bulk loads, and to
    repair by hand); rows already right are left alone. `open_statuses` comes from the incidents
    app, which this one does not import.

    Each count is grouped once over its whole table and joined to the datasets: as a subquery per
    dataset, PostgreSQL (with statistics from before a bulk load) scanned every open incident once
    per dataset, for hours at 1,000,000 incidents.
    """
    failing, open_ = list(FAILING_OUTCOMES), list(open_statuses)
    counted = (
        "SELECT d.id AS id, COALESCE(c.checks, 0) AS checks, COALESCE(c.failing, 0) AS failing, "  # noqa: S608
        "COALESCE(o.n, 0) AS open_incidents FROM catalog_dataset d "
        "LEFT JOIN (SELECT dataset_id, COUNT(*) AS checks, "
        f"SUM(CASE WHEN last_outcome IN ({_placeholders(failing)}) THEN 1 ELSE 0 END) AS failing "
        "FROM catalog_check GROUP BY dataset_id) c ON c.dataset_id = d.id "
        "LEFT JOIN (SELECT x.dataset_id, COUNT(*) AS n FROM incidents_incidentdataset x "
        "JOIN incidents_incident i ON i.id = x.incident_id "
        f"WHERE i.status IN ({_placeholders(open_)}) GROUP BY x.dataset_id) o ON o.dataset_id = d.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_dataset SET check_count = v.checks, failing_check_count = v.failing, "  # noqa: S608
            f"open_incident_count = v.open_incidents FROM ({counted}) v WHERE catalog_dataset.id = v.id "
            "AND (catalog_dataset.check_count <> v.checks OR catalog_dataset.failing_check_count <> v.failing "
            "OR catalog_dataset.open_incident_count <> v.open_incidents)",
            [*failing, *open_],
        )
