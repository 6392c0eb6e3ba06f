"""The best SQL written by hand for each page the benchmark measures, answering what Quell's API answers.

These are the yardstick for Quell's own queries ("the database part") and what the bench-only floor
endpoint serves. They read the tables directly, apply the same visibility rule as
quell.catalog.access (a member sees incidents linked to a dataset they hold a viewing role on), and
return plain JSON-ready dicts. They are not used by Quell itself.

This first version uses plain B-tree-friendly SQL and LIKE for title words; full-text and keyset
variants belong to the next step of issue 6.
"""

# Only placeholders ("%s, %s") and fixed fragments are put into the SQL text; values go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

INCIDENT_COLUMNS = (
    "i.id, i.number, i.title, i.description, i.severity, i.status, i.created_at, i.updated_at, "
    "i.resolved_at, i.resolution_notes, i.version, "
    "l.id, l.email, l.name, r.id, r.email, r.name"
)


@dataclass
class ListQuery:
    """The incident list's filters, as GET /api/v1/incidents takes them."""

    statuses: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)
    reporter_ids: list[int] = field(default_factory=list)
    dataset_ids: list[int] = field(default_factory=list)
    search: str = ""
    page: int = 0
    size: int = 50


@dataclass
class Caller:
    user_id: int
    is_admin: bool


def _in(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def visible_dataset_ids(cursor: CursorWrapper, caller: Caller) -> list[int] | None:
    """The datasets a member may view, or None for an admin (who sees everything)."""
    if caller.is_admin:
        return None
    cursor.execute(
        "SELECT DISTINCT r.dataset_id FROM catalog_responsibility r "
        "JOIN accounts_datasetrole dr ON dr.id = r.role_id "
        "WHERE dr.view_dataset AND (r.user_id = %s "
        "OR r.group_id IN (SELECT m.usergroup_id FROM accounts_usergroup_members m WHERE m.user_id = %s) "
        "OR r.group_id IN (SELECT g.id FROM accounts_usergroup g WHERE g.is_everyone))",
        [caller.user_id, caller.user_id],
    )
    return [row[0] for row in cursor.fetchall()]


def _where(query: ListQuery, visible: list[int] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if visible is not None:
        if not visible:
            return "1 = 0", []
        clauses.append(
            "EXISTS (SELECT 1 FROM incidents_incidentdataset v WHERE v.incident_id = i.id "
            f"AND v.dataset_id IN ({_in(visible)}))"
        )
        params += visible
    for column, values in (
        ("i.status", query.statuses),
        ("i.severity", query.severities),
        ("i.lead_id", query.lead_ids),
        ("i.reporter_id", query.reporter_ids),
    ):
        if values:
            clauses.append(f"{column} IN ({_in(values)})")
            params += values
    if query.dataset_ids:
        wanted = [d for d in query.dataset_ids if visible is None or d in visible]
        if not wanted:
            return "1 = 0", []
        clauses.append(
            "EXISTS (SELECT 1 FROM incidents_incidentdataset f WHERE f.incident_id = i.id "
            f"AND f.dataset_id IN ({_in(wanted)}))"
        )
        params += wanted
    like = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
    for word in query.search.split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(f"i.title {like} %s ESCAPE '\\'")
        params.append(f"%{escaped}%")
    return " AND ".join(clauses) or "1 = 1", params


def _user(row: tuple[Any, ...], at: int) -> dict[str, Any]:
    return {"id": row[at], "email": row[at + 1], "name": row[at + 2]}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _details(
    cursor: CursorWrapper, rows: list[tuple[Any, ...]], visible: list[int] | None
) -> list[dict[str, Any]]:
    """Incidents with their visible datasets and linked results: two queries for the whole page."""
    ids = [row[0] for row in rows]
    datasets: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        only_visible = "" if visible is None else f" AND d.id IN ({_in(visible)})"
        extra = [] if visible is None else list(visible)
        cursor.execute(
            "SELECT x.incident_id, d.id, d.name, s.name FROM incidents_incidentdataset x "
            "JOIN catalog_dataset d ON d.id = x.dataset_id JOIN catalog_datasource s ON s.id = d.data_source_id "
            f"WHERE x.incident_id IN ({_in(ids)}){only_visible} ORDER BY d.id",
            ids + extra,
        )
        for incident_id, dataset_id, name, source in cursor.fetchall():
            datasets[incident_id].append({"id": dataset_id, "name": name, "dataSource": source})
        cursor.execute(
            "SELECT x.incident_id, cr.id, cr.check_id, c.name, cr.dataset_id, d.name, cr.outcome, cr.value, "
            "cr.data_timestamp FROM incidents_incidentcheckresult x "
            "JOIN catalog_checkresult cr ON cr.id = x.check_result_id "
            "JOIN catalog_check c ON c.id = cr.check_id JOIN catalog_dataset d ON d.id = cr.dataset_id "
            f"WHERE x.incident_id IN ({_in(ids)}){only_visible} ORDER BY x.added_at, x.id",
            ids + extra,
        )
        for incident_id, *result in cursor.fetchall():
            results[incident_id].append(
                dict(
                    zip(
                        ("id", "checkId", "checkName", "datasetId", "datasetName", "outcome", "value"),
                        result[:7],
                        strict=True,
                    )
                )
                | {"dataTimestamp": _iso(result[7])}
            )
    return [
        {
            "id": row[0],
            "number": row[1],
            "title": row[2],
            "name": row[2],
            "description": row[3],
            "severity": row[4],
            "status": row[5],
            "created": _iso(row[6]),
            "lastUpdated": _iso(row[7]),
            "resolvedAt": _iso(row[8]),
            "resolutionNotes": row[9],
            "version": row[10],
            "lead": _user(row, 11),
            "reporter": _user(row, 14),
            "datasets": datasets[row[0]],
            "checkResults": results[row[0]],
        }
        for row in rows
    ]


def incident_list(cursor: CursorWrapper, caller: Caller, query: ListQuery) -> dict[str, Any]:
    visible = visible_dataset_ids(cursor, caller)
    where, params = _where(query, visible)
    cursor.execute(f"SELECT COUNT(*) FROM incidents_incident i WHERE {where}", params)
    total = int(cursor.fetchone()[0])
    rows: list[tuple[Any, ...]] = []
    if total:
        cursor.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents_incident i "
            "JOIN accounts_user l ON l.id = i.lead_id JOIN accounts_user r ON r.id = i.reporter_id "
            f"WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT %s OFFSET %s",
            [*params, query.size, query.page * query.size],
        )
        rows = cursor.fetchall()
    return {"content": _details(cursor, rows, visible), "totalElements": total, "number": query.page}


def counts_per_status(cursor: CursorWrapper, caller: Caller, query: ListQuery) -> dict[str, int]:
    visible = visible_dataset_ids(cursor, caller)
    where, params = _where(query, visible)
    cursor.execute(
        f"SELECT i.status, COUNT(*) FROM incidents_incident i WHERE {where} GROUP BY i.status", params
    )
    return {status: int(n) for status, n in cursor.fetchall()}


def incident(cursor: CursorWrapper, caller: Caller, incident_id: int) -> dict[str, Any] | None:
    visible = visible_dataset_ids(cursor, caller)
    where, params = _where(ListQuery(), visible)
    cursor.execute(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents_incident i "
        "JOIN accounts_user l ON l.id = i.lead_id JOIN accounts_user r ON r.id = i.reporter_id "
        f"WHERE i.id = %s AND {where}",
        [incident_id, *params],
    )
    rows = cursor.fetchall()
    found = _details(cursor, rows, visible)
    return found[0] if found else None


def check_results(cursor: CursorWrapper, caller: Caller, check_id: int, size: int) -> dict[str, Any] | None:
    """A check's newest results, as GET /api/v1/checks/{id}/results pages them."""
    visible = visible_dataset_ids(cursor, caller)
    cursor.execute("SELECT dataset_id FROM catalog_check WHERE id = %s", [check_id])
    found = cursor.fetchone()
    if found is None or (visible is not None and found[0] not in visible):
        return None
    cursor.execute("SELECT COUNT(*) FROM catalog_checkresult WHERE check_id = %s", [check_id])
    total = int(cursor.fetchone()[0])
    cursor.execute(
        "SELECT cr.id, cr.check_id, c.name, cr.dataset_id, d.name, cr.scan_id, cr.outcome, cr.value, "
        "cr.data_timestamp, cr.diagnostics FROM catalog_checkresult cr "
        "JOIN catalog_check c ON c.id = cr.check_id JOIN catalog_dataset d ON d.id = cr.dataset_id "
        "WHERE cr.check_id = %s ORDER BY cr.data_timestamp DESC, cr.id DESC LIMIT %s",
        [check_id, size],
    )
    keys = ("id", "checkId", "checkName", "datasetId", "datasetName", "scanId", "outcome", "value")
    content = [
        dict(zip(keys, row[:8], strict=True)) | {"dataTimestamp": _iso(row[8]), "diagnostics": row[9]}
        for row in cursor.fetchall()
    ]
    return {"content": content, "totalElements": total}
