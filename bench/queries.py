"""The best SQL written by hand for each page the benchmark measures, answering what Quell's API answers.

These are the yardstick for Quell's own queries ("the database part") and what the bench-only floor
endpoint serves. They read the tables directly, apply the same visibility rule as
quell.accounts.permissions (a member sees incidents linked to a dataset they hold a viewing role on), and
return plain JSON-ready dicts. They are not used by Quell itself.

Title words are searched through the database's full-text index when it has one, else with LIKE;
deep pages have a keyset variant (incident_list_after) next to the OFFSET one.
"""

# Only placeholders ("%s, %s") and fixed fragments are put into the SQL text; values go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import json
import re
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


VISIBLE_DATASETS = (
    "SELECT r.dataset_id FROM catalog_responsibility r JOIN accounts_datasetrole dr ON dr.id = r.role_id "
    "WHERE dr.view_dataset AND (r.user_id = %s "
    "OR r.group_id IN (SELECT m.usergroup_id FROM accounts_usergroup_members m WHERE m.user_id = %s) "
    "OR r.group_id IN (SELECT g.id FROM accounts_usergroup g WHERE g.is_everyone))"
)


@dataclass
class Viewer:
    """A member, for pages that probe each row's dataset for the view permission instead of
    listing every dataset the member can view first (7,000 of them at 1,000,000 incidents)."""

    user_id: int
    groups: list[int]

    def probe(self, column: str) -> tuple[str, list[Any]]:
        """A condition: the member, or one of their groups (Everyone too), may view dataset `column`."""
        return (
            "EXISTS (SELECT 1 FROM catalog_responsibility r JOIN accounts_datasetrole dr ON dr.id = r.role_id "
            f"WHERE r.dataset_id = {column} AND dr.view_dataset "
            f"AND (r.user_id = %s OR r.group_id IN ({_in(self.groups)})))",
            [self.user_id, *self.groups],
        )

    def among(self, cursor: CursorWrapper, dataset_ids: list[int]) -> list[int]:
        """Those of these datasets the member may view."""
        if not dataset_ids:
            return []
        condition, params = self.probe("d.id")
        cursor.execute(
            f"SELECT d.id FROM catalog_dataset d WHERE d.id IN ({_in(dataset_ids)}) AND {condition}",
            [*dataset_ids, *params],
        )
        return [row[0] for row in cursor.fetchall()]


def viewer(cursor: CursorWrapper, caller: Caller) -> Viewer | None:
    """The member with their groups (one read), or None for an admin."""
    if caller.is_admin:
        return None
    cursor.execute(
        "SELECT m.usergroup_id FROM accounts_usergroup_members m WHERE m.user_id = %s "
        "UNION SELECT g.id FROM accounts_usergroup g WHERE g.is_everyone",
        [caller.user_id],
    )
    return Viewer(caller.user_id, [row[0] for row in cursor.fetchall()] or [0])


Visible = list[int] | Viewer | None


def _where(query: ListQuery, visible: Visible, caller: Caller | None = None) -> tuple[str, list[Any]]:
    """The list's WHERE clause. A member's visibility is a probe of each incident's datasets for a
    Viewer (whose dataset filter must already hold only datasets they view) or a subquery when the
    caller is given (the planner then walks the newest incidents and probes), else the list of
    visible dataset ids."""
    clauses: list[str] = []
    params: list[Any] = []
    if isinstance(visible, Viewer):
        condition, values = visible.probe("v.dataset_id")
        clauses.append(
            f"EXISTS (SELECT 1 FROM incidents_incidentdataset v WHERE v.incident_id = i.id AND {condition})"
        )
        params += values
    elif visible is not None:
        if not visible:
            return "1 = 0", []
        if caller is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM incidents_incidentdataset v WHERE v.incident_id = i.id "
                f"AND v.dataset_id IN ({VISIBLE_DATASETS}))"
            )
            params += [caller.user_id, caller.user_id]
        else:
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
        wanted = [d for d in query.dataset_ids if not isinstance(visible, list) or d in visible]
        if not wanted:
            return "1 = 0", []
        clauses.append(
            "EXISTS (SELECT 1 FROM incidents_incidentdataset f WHERE f.incident_id = i.id "
            f"AND f.dataset_id IN ({_in(wanted)}))"
        )
        params += wanted
    if query.search.strip():
        clause, values = _title_search(query.search)
        clauses.append(clause)
        params += values
    return " AND ".join(clauses) or "1 = 1", params


TITLE_FTS = "incidents_incident_title_fts"
TITLE_GIN = "incident_title_search"
_has_title_index: dict[str, bool] = {}


def _title_index_exists() -> bool:
    """Whether the database has a full-text index of titles (issue 6 added one); asked once."""
    name = str(connection.settings_dict["NAME"])
    if name not in _has_title_index:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [TITLE_GIN])
            else:
                cursor.execute("SELECT 1 FROM sqlite_master WHERE name = %s", [TITLE_FTS])
            _has_title_index[name] = cursor.fetchone() is not None
    return _has_title_index[name]


def _title_search(search: str) -> tuple[str, list[Any]]:
    """Titles holding every word of the search, each as a word or a word's start.

    With a full-text index, the index answers (FTS5 on SQLite, the GIN expression index on
    PostgreSQL); without one, the best there is: LIKE per word."""
    words = list(dict.fromkeys(re.findall(r"[^\W_]+", search.lower())))[:20]
    if not words:
        return "1 = 0", []
    if _title_index_exists():
        if connection.vendor == "postgresql":
            return (
                "to_tsvector('simple'::regconfig, i.title) @@ to_tsquery('simple'::regconfig, %s)",
                [" & ".join(f"{word}:*" for word in words)],
            )
        return (
            f"i.id IN (SELECT rowid FROM {TITLE_FTS} WHERE {TITLE_FTS} MATCH %s)",
            [" AND ".join(f'"{word}"*' for word in words)],
        )
    like = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
    return " AND ".join([f"i.title {like} %s"] * len(words)), [f"%{word}%" for word in words]


def _title_matches(search: str, limit: int) -> tuple[str, list[Any]]:
    """A subquery of the ids of `limit` incidents whose titles match, in the full-text index's order."""
    clause, values = _title_search(search)
    if connection.vendor == "postgresql" or clause == "1 = 0":
        return f"SELECT i.id FROM incidents_incident i WHERE {clause} LIMIT %s", [*values, limit]
    return f"SELECT rowid FROM {TITLE_FTS} WHERE {TITLE_FTS} MATCH %s LIMIT %s", [*values, limit]


def _user(row: tuple[Any, ...], at: int) -> dict[str, Any]:
    return {"id": row[at], "email": row[at + 1], "name": row[at + 2]}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _details(cursor: CursorWrapper, rows: list[tuple[Any, ...]], visible: Visible) -> list[dict[str, Any]]:
    """Incidents with their visible datasets and linked results: two queries for the whole page."""
    ids = [row[0] for row in rows]
    datasets: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        only_visible = ""
        extra: list[Any] = []
        if isinstance(visible, Viewer):
            condition, extra = visible.probe("d.id")
            only_visible = f" AND {condition}"
        elif visible is not None:
            only_visible, extra = f" AND d.id IN ({_in(visible)})", list(visible)
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
            f"WHERE x.incident_id IN ({_in(ids)}){only_visible} ORDER BY cr.data_timestamp DESC, cr.id",
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


STATUSES = ("reported", "investigating", "fixing", "resolved")
# Counts with filters beyond status and dataset stop here, as Quell's do (issue 6: a count must not
# walk a million rows); the total is then "at least".
COUNT_CAP = 10_000
# A title search counts within its first SEARCH_COUNT_CAP + 1 matches, as Quell's does.
SEARCH_COUNT_CAP = 1_000
_has_tallies: dict[str, bool] = {}


def _tallies_exist() -> bool:
    name = str(connection.settings_dict["NAME"])
    if name not in _has_tallies:
        _has_tallies[name] = "incidents_incidenttally" in connection.introspection.table_names()
    return _has_tallies[name]


def _member_tallies(caller: Caller) -> tuple[str, list[Any]]:
    """The counter rows of what a member sees: Everyone's, plus the sets no public dataset is in
    that hold a dataset the member is named on (in person or by a group)."""
    return (
        "((t.dataset_set_id IS NULL AND t.everyone) OR t.dataset_set_id IN "
        "(SELECT m.dataset_set_id FROM incidents_datasetsetmember m "
        "JOIN incidents_datasetset s ON s.id = m.dataset_set_id AND NOT s.public "
        "WHERE m.dataset_id IN (SELECT r.dataset_id FROM catalog_responsibility r "
        "JOIN accounts_datasetrole dr ON dr.id = r.role_id WHERE dr.view_dataset AND (r.user_id = %s "
        "OR r.group_id IN (SELECT g.usergroup_id FROM accounts_usergroup_members g WHERE g.user_id = %s)))))",
        [caller.user_id, caller.user_id],
    )


def _status_counts(
    cursor: CursorWrapper, caller: Caller, query: ListQuery, visible: Visible
) -> dict[str, int]:
    """Incidents per status matching every filter but the status one.

    With the status counters issue 6 added (incidents_incidenttally, per status and severity, org-wide,
    for Everyone and per exact set of datasets), the unfiltered, dataset and severity cases read a
    few counter rows; everything else is counted per status up to COUNT_CAP. Without counters
    (before issue 6), one GROUP BY over the matches."""
    others = query.lead_ids or query.reporter_ids or query.search.strip()
    unfiltered = ListQuery(**{**query.__dict__, "statuses": []})
    params: list[Any]
    if not _tallies_exist():
        where, params = _where(unfiltered, visible, caller)
        cursor.execute(
            f"SELECT i.status, COUNT(*) FROM incidents_incident i WHERE {where} GROUP BY i.status", params
        )
        return {status: int(n) for status, n in cursor.fetchall()}
    if not others:
        if query.dataset_ids:
            chosen = [d for d in query.dataset_ids if not isinstance(visible, list) or d in visible]
            if not chosen:
                return {}
            rows = (
                "t.dataset_set_id IN (SELECT m.dataset_set_id FROM incidents_datasetsetmember m "
                f"WHERE m.dataset_id IN ({_in(chosen)}))"
            )
            params = list(chosen)
        elif visible is not None:
            rows, params = _member_tallies(caller)
        else:
            rows, params = "t.dataset_set_id IS NULL AND NOT t.everyone", []
        if query.severities:
            rows = f"{rows} AND t.severity IN ({_in(query.severities)})"
            params = [*params, *query.severities]
        cursor.execute(
            f"SELECT t.status, SUM(t.count) FROM incidents_incidenttally t WHERE {rows} GROUP BY t.status",
            params,
        )
        return {status: int(n) for status, n in cursor.fetchall() if n}
    if query.search.strip() and _title_index_exists():
        matches, found = _title_matches(query.search, SEARCH_COUNT_CAP + 1)
        where, params = _where(ListQuery(**{**unfiltered.__dict__, "search": ""}), visible, caller)
        cursor.execute(
            f"SELECT i.status, COUNT(*) FROM incidents_incident i WHERE i.id IN ({matches}) AND {where} "
            "GROUP BY i.status",
            [*found, *params],
        )
        return {status: int(n) for status, n in cursor.fetchall()}
    where, params = _where(unfiltered, visible, caller)
    counts = {}
    for status in STATUSES:
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM incidents_incident i WHERE {where} AND i.status = %s LIMIT %s) x",
            [*params, status, COUNT_CAP],
        )
        n = int(cursor.fetchone()[0])
        if n:
            counts[status] = n
    return counts


def _member_query(cursor: CursorWrapper, caller: Caller, query: ListQuery) -> tuple[Viewer | None, ListQuery]:
    """The caller as a Viewer, and the query with a dataset filter cut to the datasets they view."""
    member = viewer(cursor, caller)
    if member is not None and query.dataset_ids:
        # A filter naming only datasets the member cannot view matches nothing.
        query = ListQuery(**{**query.__dict__, "dataset_ids": member.among(cursor, query.dataset_ids) or [0]})
    return member, query


def incident_list(cursor: CursorWrapper, caller: Caller, query: ListQuery) -> dict[str, Any]:
    visible, query = _member_query(cursor, caller, query)
    where, params = _where(query, visible, caller)
    counts = _status_counts(cursor, caller, query, visible)
    total = sum(n for status, n in counts.items() if not query.statuses or status in query.statuses)
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
    visible, query = _member_query(cursor, caller, query)
    return _status_counts(cursor, caller, query, visible)


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


# --- Keyset pages ---------------------------------------------------------------------------------


def incident_list_after(
    cursor: CursorWrapper, caller: Caller, query: ListQuery, after: tuple[Any, int]
) -> dict[str, Any]:
    """The page after the row (created_at, id): what a keyset cursor asks for, with no OFFSET walk.

    The total is left out, as a cursor page needs none; Quell's own cursor page may count anyway,
    which the comparison then shows.
    """
    visible, query = _member_query(cursor, caller, query)
    where, params = _where(query, visible, caller)
    created = connection.ops.adapt_datetimefield_value(after[0])
    cursor.execute(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents_incident i "
        "JOIN accounts_user l ON l.id = i.lead_id JOIN accounts_user r ON r.id = i.reporter_id "
        f"WHERE {where} AND (i.created_at < %s OR (i.created_at = %s AND i.id < %s)) "
        "ORDER BY i.created_at DESC, i.id DESC LIMIT %s",
        [*params, created, created, after[1], query.size],
    )
    rows = cursor.fetchall()
    return {"content": _details(cursor, rows, visible)}


# --- Web pages ------------------------------------------------------------------------------------

WEB_PAGE_SIZE = 50
CHART_POINTS = 90
PICKER_SIZE = 50


def _people(cursor: CursorWrapper) -> list[dict[str, Any]]:
    """The choices of the lead and reporter filters: whoever leads or reported an incident (anyone
    else would find nothing), one probe of each index per user."""
    cursor.execute(
        "SELECT u.id, u.name, u.email FROM accounts_user u "
        "WHERE EXISTS (SELECT 1 FROM incidents_incident i WHERE i.lead_id = u.id) "
        "OR EXISTS (SELECT 1 FROM incidents_incident i WHERE i.reporter_id = u.id) "
        "ORDER BY u.name, u.email, u.id"
    )
    return [{"id": pk, "name": name, "email": email} for pk, name, email in cursor.fetchall()]


def _dataset_header(cursor: CursorWrapper, dataset_id: int) -> dict[str, Any] | None:
    cursor.execute(
        "SELECT d.id, d.name, d.label, s.id, s.name FROM catalog_dataset d "
        "JOIN catalog_datasource s ON s.id = d.data_source_id WHERE d.id = %s",
        [dataset_id],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return {"id": row[0], "name": row[1], "label": row[2], "dataSource": {"id": row[3], "name": row[4]}}


def dataset_incidents_page(cursor: CursorWrapper, caller: Caller, dataset_id: int) -> dict[str, Any] | None:
    """What the dataset's Incidents tab shows: the dataset, counts per status, the first page, and
    the people for the lead and reporter filters."""
    visible = visible_dataset_ids(cursor, caller)
    if visible is not None and dataset_id not in visible:
        return None
    header = _dataset_header(cursor, dataset_id)
    if header is None:
        return None
    query = ListQuery(dataset_ids=[dataset_id], size=WEB_PAGE_SIZE)
    return {
        "dataset": header,
        "counts": counts_per_status(cursor, caller, query),
        "incidents": incident_list(cursor, caller, query),
        "people": _people(cursor),
    }


def incidents_page(cursor: CursorWrapper, caller: Caller) -> dict[str, Any]:
    """What the org-wide Incidents page shows: counts per status, the first page, and the people
    and datasets for its filters."""
    visible = visible_dataset_ids(cursor, caller)
    only = "" if visible is None else f"WHERE d.id IN ({_in(visible)}) "
    cursor.execute(
        "SELECT d.id, d.name, s.name FROM catalog_dataset d JOIN catalog_datasource s ON s.id = d.data_source_id "
        f"{only}ORDER BY s.name, d.name, d.id",
        visible or [],
    )
    datasets = [{"id": pk, "name": name, "dataSource": source} for pk, name, source in cursor.fetchall()]
    query = ListQuery(size=WEB_PAGE_SIZE)
    return {
        "counts": counts_per_status(cursor, caller, query),
        "incidents": incident_list(cursor, caller, query),
        "people": _people(cursor),
        "datasets": datasets,
    }


def _timeline(cursor: CursorWrapper, incident_id: int, visible: list[int] | None) -> list[dict[str, Any]]:
    # An attached result from a dataset the caller cannot view is hidden with its event.
    hidden = (
        "" if visible is None else f" AND (e.check_result_id IS NULL OR cr.dataset_id IN ({_in(visible)}))"
    )
    cursor.execute(
        "SELECT e.id, e.kind, e.created_at, e.field, e.old_value, e.new_value, e.text, "
        "a.id, a.name, a.email, cr.id, c.name, cr.outcome FROM incidents_timelineevent e "
        "LEFT JOIN accounts_user a ON a.id = e.actor_id "
        "LEFT JOIN catalog_checkresult cr ON cr.id = e.check_result_id "
        "LEFT JOIN catalog_check c ON c.id = cr.check_id "
        f"WHERE e.incident_id = %s{hidden} ORDER BY e.created_at, e.id",
        [incident_id, *(visible or [])],
    )
    return [
        {
            "id": row[0],
            "kind": row[1],
            "created": _iso(row[2]),
            "field": row[3],
            "oldValue": row[4],
            "newValue": row[5],
            "text": row[6],
            "actor": None if row[7] is None else _user(row, 7),
            "checkResult": None
            if row[10] is None
            else {"id": row[10], "checkName": row[11], "outcome": row[12]},
        }
        for row in cursor.fetchall()
    ]


def _manage_incidents_clause(caller: Caller) -> tuple[str, list[Any]]:
    """Responsibilities (alias r, joined to its role as dr) granting Manage incidents to the caller."""
    return (
        "dr.manage_incidents AND (r.user_id = %s OR r.group_id IN "
        "(SELECT m.usergroup_id FROM accounts_usergroup_members m WHERE m.user_id = %s) "
        "OR r.group_id IN (SELECT g.id FROM accounts_usergroup g WHERE g.is_everyone))",
        [caller.user_id, caller.user_id],
    )


def incident_page(cursor: CursorWrapper, caller: Caller, number: int) -> dict[str, Any] | None:
    """What the incident page shows an editor: the incident, its timeline, who may lead it, and the
    results that could still be attached (the picker)."""
    visible = visible_dataset_ids(cursor, caller)
    cursor.execute("SELECT id FROM incidents_incident WHERE number = %s", [number])
    found = cursor.fetchone()
    if found is None:
        return None
    body = incident(cursor, caller, found[0])
    if body is None:
        return None
    dataset_ids = [d["id"] for d in body["datasets"]]
    grants, grant_params = _manage_incidents_clause(caller)
    can_edit = caller.is_admin
    if not can_edit and dataset_ids:
        cursor.execute(
            "SELECT 1 FROM catalog_responsibility r JOIN accounts_datasetrole dr ON dr.id = r.role_id "
            f"WHERE r.dataset_id IN ({_in(dataset_ids)}) AND {grants} LIMIT 1",
            [*dataset_ids, *grant_params],
        )
        can_edit = cursor.fetchone() is not None
    page: dict[str, Any] = {
        "incident": body,
        "timeline": _timeline(cursor, found[0], visible),
        "canEdit": can_edit,
    }
    if can_edit and dataset_ids:
        # Lead candidates: active users holding Manage incidents on one of the datasets, and admins.
        cursor.execute(
            "SELECT u.id, u.name, u.email FROM accounts_user u WHERE u.is_active AND ("
            "u.global_role = 'admin' OR EXISTS (SELECT 1 FROM catalog_responsibility r "
            "JOIN accounts_datasetrole dr ON dr.id = r.role_id "
            f"WHERE r.dataset_id IN ({_in(dataset_ids)}) AND dr.manage_incidents AND (r.user_id = u.id "
            "OR r.group_id IN (SELECT m.usergroup_id FROM accounts_usergroup_members m WHERE m.user_id = u.id) "
            "OR r.group_id IN (SELECT g.id FROM accounts_usergroup g WHERE g.is_everyone)))) "
            "ORDER BY u.name, u.email, u.id",
            dataset_ids,
        )
        page["leads"] = [{"id": pk, "name": name, "email": email} for pk, name, email in cursor.fetchall()]
        manageable = dataset_ids
        if not caller.is_admin:
            cursor.execute(
                "SELECT DISTINCT r.dataset_id FROM catalog_responsibility r "
                "JOIN accounts_datasetrole dr ON dr.id = r.role_id "
                f"WHERE r.dataset_id IN ({_in(dataset_ids)}) AND {grants}",
                [*dataset_ids, *grant_params],
            )
            manageable = [row[0] for row in cursor.fetchall()]
        picker: list[dict[str, Any]] = []
        if manageable:
            cursor.execute(
                "SELECT cr.id, c.name, cr.outcome, cr.data_timestamp, d.name FROM catalog_checkresult cr "
                "JOIN catalog_check c ON c.id = cr.check_id JOIN catalog_dataset d ON d.id = cr.dataset_id "
                f"WHERE cr.dataset_id IN ({_in(manageable)}) AND cr.outcome IN ('warn', 'fail') "
                "AND NOT EXISTS (SELECT 1 FROM incidents_incidentcheckresult x "
                "WHERE x.incident_id = %s AND x.check_result_id = cr.id) "
                "ORDER BY cr.data_timestamp DESC, cr.id DESC LIMIT %s",
                [*manageable, found[0], PICKER_SIZE],
            )
            picker = [
                {
                    "id": r[0],
                    "checkName": r[1],
                    "outcome": r[2],
                    "dataTimestamp": _iso(r[3]),
                    "datasetName": r[4],
                }
                for r in cursor.fetchall()
            ]
        page["picker"] = picker
    return page


def check_page(cursor: CursorWrapper, caller: Caller, check_id: int) -> dict[str, Any] | None:
    """What the check page shows: the check, its newest result and a chart of the last 90, the
    first page of results with the incidents each is part of."""
    found = check_results(cursor, caller, check_id, WEB_PAGE_SIZE)
    if found is None:
        return None
    cursor.execute(
        "SELECT c.id, c.name, c.definition, c.check_type, c.last_outcome, c.last_result_at, d.id, d.name, "
        "s.name FROM catalog_check c JOIN catalog_dataset d ON d.id = c.dataset_id "
        "JOIN catalog_datasource s ON s.id = d.data_source_id WHERE c.id = %s",
        [check_id],
    )
    row = cursor.fetchone()
    cursor.execute(
        "SELECT outcome, value, data_timestamp FROM catalog_checkresult WHERE check_id = %s "
        "ORDER BY data_timestamp DESC, id DESC LIMIT %s",
        [check_id, CHART_POINTS],
    )
    chart = [{"outcome": o, "value": v, "dataTimestamp": _iso(t)} for o, v, t in cursor.fetchall()]
    ids = [r["id"] for r in found["content"]]
    linked: dict[int, list[dict[str, Any]]] = {}
    if ids:
        cursor.execute(
            "SELECT x.check_result_id, i.id, i.number, i.title, i.status FROM incidents_incidentcheckresult x "
            f"JOIN incidents_incident i ON i.id = x.incident_id WHERE x.check_result_id IN ({_in(ids)}) "
            "ORDER BY x.added_at, x.id",
            ids,
        )
        for result_id, pk, number, title, status in cursor.fetchall():
            linked.setdefault(result_id, []).append(
                {"id": pk, "number": number, "title": title, "status": status}
            )
    return {
        "check": {
            "id": row[0],
            "name": row[1],
            "definition": row[2],
            "type": row[3],
            "lastOutcome": row[4],
            "lastResultAt": _iso(row[5]),
            "dataset": {"id": row[6], "name": row[7], "dataSource": row[8]},
        },
        "chart": chart,
        "results": found,
        "linked": {str(k): v for k, v in linked.items()},
    }


OPEN_STATUSES = ("reported", "investigating", "fixing")
SEVERITIES = ("critical", "major", "minor")
ASSIGNED_SHOWN = 10
NEEDING_ATTENTION_SHOWN = 15


def home_page(cursor: CursorWrapper, caller: Caller) -> dict[str, Any]:
    """What the home page shows: open incidents per severity, the caller's open incidents most
    severe first (the first 10 and how many), the datasets whose checks warn or fail now with no
    open incident (the first 15, most failing checks first), and, for an admin, the integrations
    Quell turned off."""
    member = viewer(cursor, caller)
    # The counter rows of what the caller sees, as the counts per status read them.
    rows, params = (
        _member_tallies(caller) if member is not None else ("t.dataset_set_id IS NULL AND NOT t.everyone", [])
    )
    cursor.execute(
        f"SELECT t.severity, SUM(t.count) FROM incidents_incidenttally t WHERE {rows} "
        f"AND t.status IN ({_in(list(OPEN_STATUSES))}) GROUP BY t.severity",
        [*params, *OPEN_STATUSES],
    )
    by_severity = dict.fromkeys(SEVERITIES, 0)
    by_severity.update({severity: int(n) for severity, n in cursor.fetchall()})
    mine, mine_params = _where(ListQuery(statuses=list(OPEN_STATUSES), lead_ids=[caller.user_id]), None)
    if member is not None:
        # The caller's own incidents (the (lead, status) index), each probed for visibility.
        mine = f"{mine} AND {_visibility_probe(member.groups)}"
        mine_params = [*mine_params, caller.user_id, *member.groups]
    # Text order of severity is most severe first (critical < major < minor).
    cursor.execute(
        "SELECT i.id, i.number, i.title, i.severity, i.status FROM incidents_incident i "
        f"WHERE {mine} ORDER BY i.severity, i.created_at DESC, i.id DESC LIMIT %s",
        [*mine_params, ASSIGNED_SHOWN],
    )
    keys = ("id", "number", "title", "severity", "status")
    assigned = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    assigned_total = len(assigned)
    if assigned_total == ASSIGNED_SHOWN:
        # Only a full first page needs counting: fewer rows are all there are.
        cursor.execute(f"SELECT COUNT(*) FROM incidents_incident i WHERE {mine}", mine_params)
        assigned_total = int(cursor.fetchone()[0])

    return {
        "severities": by_severity,
        "openTotal": sum(by_severity.values()),
        "assigned": assigned,
        "assignedTotal": assigned_total,
        "needingAttention": _datasets_needing_attention(cursor, member),
        "turnedOff": _turned_off_integrations(cursor) if caller.is_admin else [],
    }


def _visibility_probe(groups: list[int]) -> str:
    """A per-incident condition: one of its datasets grants the caller (first parameter) or one of
    `groups` (the next ones) the view permission."""
    return (
        "EXISTS (SELECT 1 FROM incidents_incidentdataset v WHERE v.incident_id = i.id AND EXISTS ("
        "SELECT 1 FROM catalog_responsibility r JOIN accounts_datasetrole dr ON dr.id = r.role_id "
        "WHERE r.dataset_id = v.dataset_id AND dr.view_dataset "
        f"AND (r.user_id = %s OR r.group_id IN ({_in(groups)}))))"
    )


def _datasets_needing_attention(cursor: CursorWrapper, visible: Visible) -> list[dict[str, Any]]:
    """Visible datasets with a warn or fail check now and no open incident, most failing checks first.

    Read from the counts kept on the dataset rows, through the partial index of exactly these
    datasets (dataset_failing_unattended), each probed for a member's view permission."""
    only = ""
    params: list[Any] = []
    if isinstance(visible, Viewer):
        condition, params = visible.probe("d.id")
        only = f" AND {condition}"
    elif visible is not None:
        if not visible:
            return []
        only, params = f" AND d.id IN ({_in(visible)})", list(visible)
    cursor.execute(
        "SELECT d.id, d.name, s.name, d.failing_check_count, d.check_count FROM catalog_dataset d "
        "JOIN catalog_datasource s ON s.id = d.data_source_id "
        f"WHERE d.failing_check_count > 0 AND d.open_incident_count = 0{only} "
        "ORDER BY d.failing_check_count DESC, s.name, d.name, d.id LIMIT %s",
        [*params, NEEDING_ATTENTION_SHOWN],
    )
    return [
        {"id": pk, "name": name, "dataSource": source, "failingCheckCount": failing, "checkCount": checks}
        for pk, name, source, failing, checks in cursor.fetchall()
    ]


def _turned_off_integrations(cursor: CursorWrapper) -> list[dict[str, Any]]:
    cursor.execute(
        "SELECT id, name, disabled_at, disabled_reason FROM integrations_integration "
        "WHERE NOT enabled AND disabled_reason <> '' ORDER BY name, id"
    )
    return [
        {"id": pk, "name": name, "disabledAt": _iso(at), "disabledReason": reason}
        for pk, name, at, reason in cursor.fetchall()
    ]


# --- Writes ---------------------------------------------------------------------------------------
#
# The least SQL that has the operation's effect on the rows Quell reads back: one transaction, the
# checks Quell makes (the caller may manage incidents on the results' datasets, the results are warn
# or fail), and the inserts. Quell's own writes also record integration events and, after issue 6,
# keep status counters; the floor does not, so the comparison shows what those cost.


class Refused(Exception):
    """The floor's equivalent of Quell's 4xx: the write is not allowed or not valid."""


def _now() -> Any:
    from django.utils import timezone

    return connection.ops.adapt_datetimefield_value(timezone.now())


def _failing_datasets(cursor: CursorWrapper, caller: Caller, result_ids: list[int]) -> list[int]:
    cursor.execute(
        f"SELECT id, dataset_id, outcome FROM catalog_checkresult WHERE id IN ({_in(result_ids)})",
        result_ids,
    )
    rows = cursor.fetchall()
    if len(rows) != len(set(result_ids)) or any(outcome not in ("warn", "fail") for _, _, outcome in rows):
        raise Refused("Only existing warn and fail results can be part of an incident.")
    datasets = sorted({dataset_id for _, dataset_id, _ in rows})
    if not caller.is_admin:
        grants, grant_params = _manage_incidents_clause(caller)
        cursor.execute(
            "SELECT COUNT(DISTINCT r.dataset_id) FROM catalog_responsibility r "
            "JOIN accounts_datasetrole dr ON dr.id = r.role_id "
            f"WHERE r.dataset_id IN ({_in(datasets)}) AND {grants}",
            [*datasets, *grant_params],
        )
        if cursor.fetchone()[0] != len(datasets):
            raise Refused("You may not manage incidents on every dataset of these results.")
    return datasets


def _result_events(incident_id: int, result_ids: list[int], actor: int, now: Any) -> list[list[Any]]:
    return [[incident_id, "resultAttached", actor, now, "", "", r] for r in result_ids]


def _insert_events(cursor: CursorWrapper, rows: list[list[Any]]) -> None:
    cursor.executemany(
        "INSERT INTO incidents_timelineevent (incident_id, kind, actor_id, created_at, field, text, "
        "check_result_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def create_incident(cursor: CursorWrapper, caller: Caller, title: str, result_ids: list[int]) -> int:
    """Insert an incident from warn/fail results and return its id (inside the caller's transaction)."""
    title = title.strip()
    if not title or len(title) > 300 or not result_ids:
        raise Refused("An incident needs a title of 1 to 300 characters and at least one result.")
    datasets = _failing_datasets(cursor, caller, result_ids)
    now = _now()
    cursor.execute(
        "UPDATE incidents_numbersequence SET last_value = last_value + 1 WHERE name = 'incident' "
        "RETURNING last_value"
    )
    number = cursor.fetchone()[0]
    cursor.execute(
        "INSERT INTO incidents_incident (number, title, description, severity, status, lead_id, "
        "reporter_id, created_at, updated_at, resolved_at, resolution_notes, version) "
        "VALUES (%s, %s, '', 'major', 'reported', %s, %s, %s, %s, NULL, '', 1) RETURNING id",
        [number, title, caller.user_id, caller.user_id, now, now],
    )
    incident_id = int(cursor.fetchone()[0])
    cursor.executemany(
        "INSERT INTO incidents_incidentdataset (incident_id, dataset_id) VALUES (%s, %s)",
        [[incident_id, d] for d in datasets],
    )
    cursor.executemany(
        "INSERT INTO incidents_incidentcheckresult (incident_id, check_result_id, added_by_id, added_at) "
        "VALUES (%s, %s, %s, %s)",
        [[incident_id, r, caller.user_id, now] for r in result_ids],
    )
    _insert_events(
        cursor,
        [
            [incident_id, "created", caller.user_id, now, "", title, None],
            *_result_events(incident_id, result_ids, caller.user_id, now),
        ],
    )
    return incident_id


def attach_results(cursor: CursorWrapper, caller: Caller, incident_id: int, result_ids: list[int]) -> bool:
    """Link more warn/fail results to an incident the caller can see; False if there is no such incident."""
    if not result_ids:
        raise Refused("Give at least one check result to attach.")
    where, params = _where(ListQuery(), visible_dataset_ids(cursor, caller))
    cursor.execute(
        f"SELECT i.id FROM incidents_incident i WHERE i.id = %s AND {where}", [incident_id, *params]
    )
    if cursor.fetchone() is None:
        return False
    datasets = _failing_datasets(cursor, caller, result_ids)
    cursor.execute(
        "SELECT check_result_id FROM incidents_incidentcheckresult "
        f"WHERE incident_id = %s AND check_result_id IN ({_in(result_ids)})",
        [incident_id, *result_ids],
    )
    linked = {row[0] for row in cursor.fetchall()}
    new = sorted(set(result_ids) - linked)
    if not new:
        return True
    now = _now()
    cursor.execute(
        f"SELECT dataset_id FROM incidents_incidentdataset WHERE incident_id = %s AND dataset_id IN ({_in(datasets)})",
        [incident_id, *datasets],
    )
    known = {row[0] for row in cursor.fetchall()}
    cursor.executemany(
        "INSERT INTO incidents_incidentdataset (incident_id, dataset_id) VALUES (%s, %s)",
        [[incident_id, d] for d in datasets if d not in known],
    )
    cursor.executemany(
        "INSERT INTO incidents_incidentcheckresult (incident_id, check_result_id, added_by_id, added_at) "
        "VALUES (%s, %s, %s, %s)",
        [[incident_id, r, caller.user_id, now] for r in new],
    )
    _insert_events(cursor, _result_events(incident_id, new, caller.user_id, now))
    cursor.execute(
        "UPDATE incidents_incident SET version = version + 1, updated_at = %s WHERE id = %s",
        [now, incident_id],
    )
    return True


def ingest_soda_scan(cursor: CursorWrapper, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Store a Soda Core scan (sodaCoreInsertScanResults) whose data source, datasets and checks exist.

    The steady state of a nightly scan: every check was seen before, so a scan is one row, its
    datasets, one result per check and each check's last outcome. A scan naming anything new is
    refused here (Quell creates it; the floor does not try to)."""
    if not caller.is_admin:
        raise Refused("The ingest floor serves admins only; members' permission checks are Quell's.")
    checks = body.get("checks") or []
    source = body.get("defaultDataSource") or ""
    tables = sorted({str(c.get("table")) for c in checks})
    identities = sorted({str(c.get("identity")) for c in checks})
    if not checks or not tables:
        raise Refused("A scan needs checks.")
    cursor.execute("SELECT id FROM catalog_datasource WHERE name = %s", [source])
    found = cursor.fetchone()
    if found is None:
        raise Refused(f"No data source {source!r}.")
    source_id = found[0]
    cursor.execute(
        f"SELECT id, name FROM catalog_dataset WHERE data_source_id = %s AND name IN ({_in(tables)})",
        [source_id, *tables],
    )
    dataset_of = {name: pk for pk, name in cursor.fetchall()}
    if len(dataset_of) != len(tables):
        raise Refused("The scan names a dataset that does not exist yet.")
    cursor.execute(
        f"SELECT id, dataset_id, identity FROM catalog_check WHERE dataset_id IN ({_in(list(dataset_of.values()))}) "
        f"AND identity IN ({_in(identities)})",
        [*dataset_of.values(), *identities],
    )
    check_of = {(dataset_id, identity): pk for pk, dataset_id, identity in cursor.fetchall()}
    at = connection.ops.adapt_datetimefield_value(dt.datetime.fromisoformat(body["dataTimestamp"]))
    rows = []
    for c in checks:
        key = (dataset_of[str(c["table"])], str(c["identity"]))
        if key not in check_of:
            raise Refused("The scan names a check that does not exist yet.")
        value = (c.get("diagnostics") or {}).get("value")
        rows.append([check_of[key], key[0], c["outcome"], value, json.dumps(c.get("diagnostics") or {}), at])
    outcomes = {r[2] for r in rows}
    now = _now()
    json_param = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    cursor.execute(
        "INSERT INTO catalog_scan (definition_name, data_source_id, source, idempotency_key, data_timestamp, "
        "started_at, ended_at, has_errors, has_warnings, has_failures, logs, state, external_id, client, "
        f"created_by_id, created_at) VALUES (%s, %s, 'soda', NULL, %s, %s, %s, %s, %s, %s, {json_param}, %s, "
        "'', 'bench-floor', %s, %s) RETURNING id",
        [
            body.get("definitionName", ""),
            source_id,
            at,
            at,
            at,
            bool(body.get("hasErrors")),
            "warn" in outcomes,
            "fail" in outcomes,
            "[]",
            "completedWithFailures"
            if "fail" in outcomes
            else "completedWithWarnings"
            if "warn" in outcomes
            else "completed",
            caller.user_id,
            now,
        ],
    )
    scan_id = int(cursor.fetchone()[0])
    cursor.executemany(
        "INSERT INTO catalog_scan_datasets (scan_id, dataset_id) VALUES (%s, %s)",
        [[scan_id, d] for d in sorted(dataset_of.values())],
    )
    cursor.executemany(
        "INSERT INTO catalog_checkresult (check_id, dataset_id, scan_id, outcome, value, diagnostics, "
        f"data_timestamp, created_at) VALUES (%s, %s, %s, %s, %s, {json_param}, %s, %s)",
        [
            [check, dataset, scan_id, outcome, value, diag, when, now]
            for check, dataset, outcome, value, diag, when in rows
        ],
    )
    cursor.executemany(
        "UPDATE catalog_check SET last_outcome = %s, last_result_at = %s WHERE id = %s",
        [[outcome, when, check] for check, _, outcome, _, _, when in rows],
    )
    return {"scanId": scan_id, "results": len(rows)}
