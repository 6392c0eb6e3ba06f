"""Domain operations on incidents. Every entry point (API, web UI, CLI) calls these and nothing else.

Each function checks the caller's permissions, validates, writes and records the timeline in one
transaction, so a refused or failed call leaves nothing behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from django.core import signing
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields import BooleanField
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from quell.accounts.models import User, UserGroup
from quell.catalog import access
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult, Dataset, Responsibility
from quell.incidents import tallies
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.incidents.models import (
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentQuerySet,
    IncidentTally,
    NumberSequence,
    Severity,
    Status,
    TimelineEvent,
)
from quell.lib import events as domain_events
from quell.lib.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from quell.lib.seen import checked_for, mark_checked
from quell.lib.text import require_plain_text

TITLE_MAX = 300
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 20_000
MAX_RESULTS_PER_CALL = 1000


# --- Reading --------------------------------------------------------------------------------------


@dataclass
class IncidentFilters:
    statuses: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    dataset_ids: list[int] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)
    reporter_ids: list[int] = field(default_factory=list)
    incident_ids: list[int] = field(default_factory=list)
    search: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None


def visible_incidents(by: User) -> QuerySet[Incident]:
    """Incidents linked to at least one dataset the caller can view."""
    if not by.is_active:
        return Incident.objects.none()
    if by.is_admin:
        return Incident.objects.all()
    return Incident.objects.filter(_on_a_dataset_with(by, access.VIEW))


def _on_a_dataset_with(by: User, permission: str, incident: str = "pk") -> Exists:
    """A per-row condition for an active member: the incident (`incident` names its id column) is
    linked to a dataset on which they hold `permission`, which, as in access.permissions_on, counts
    only with View dataset on that dataset too."""
    pairs = IncidentDataset.objects.filter(incident=OuterRef(incident)).filter(
        access.holds_on(by, OuterRef("dataset_id"), access.VIEW)
    )
    if permission != access.VIEW:
        pairs = pairs.filter(access.holds_on(by, OuterRef("dataset_id"), permission))
    return Exists(pairs)


def with_details(incidents: QuerySet[Incident], by: User) -> QuerySet[Incident]:
    """Load what an incident's representation needs in a fixed number of queries.

    Linked results and datasets the caller cannot view are left out, so an incident that spans a
    private dataset does not leak it. Each incident gets `visible_datasets` (by id) and
    `visible_links` (newest data first, LINKED_RESULTS_ORDER), and its lead and reporter.
    """
    return _with_loader(incidents, partial(_load_details, by=by, links=True, datasets_by_name=False))


def _with_loader(
    incidents: QuerySet[Incident], loader: Callable[[list[Incident]], None]
) -> QuerySet[Incident]:
    assert isinstance(incidents, IncidentQuerySet), "incidents come from Incident.objects"
    return incidents.with_loader(loader)


def _visible_pairs(ids: list[int], by: User) -> QuerySet[IncidentDataset]:
    """The links of these incidents to the datasets the caller can view."""
    return access.only_viewable(IncidentDataset.objects.filter(incident_id__in=ids), by).order_by("id")


# An incident's results, newest data first; a scan's results (one data time) in the order it sent them.
LINKED_RESULTS_ORDER = ("-check_result__data_timestamp", "check_result_id")


def _visible_result_links(ids: list[int], by: User) -> QuerySet[IncidentCheckResult]:
    """The results linked to these incidents from datasets the caller can view, in LINKED_RESULTS_ORDER."""
    # The result's own dataset column. (Joining catalog_dataset let SQLite start from the datasets
    # and walk every result of every dataset: 0.5 s per page at 73,000 results.)
    rows = IncidentCheckResult.objects.filter(incident_id__in=ids)
    return access.only_viewable(rows, by, "check_result__dataset_id").order_by(*LINKED_RESULTS_ORDER)


def _load_details(
    incidents: list[Incident], *, by: User, links: bool, datasets_by_name: bool, known: Iterable[User] = ()
) -> None:
    """Fill lead, reporter, `visible_datasets` and (with `links`) `visible_links` for these incidents.

    Four statements whatever the number of incidents. Lead and reporter come by a query of their own
    rather than a join: with the users joined, SQLite (with approximate statistics) started from the
    users table and sorted every incident (5 s at 1,000,000); without it the page walks the sort's
    index. Shared rows (a dataset, a check) are one instance however many incidents show them.
    Users in `known` (already read by the caller) are not read again.
    """
    ids = [incident.pk for incident in incidents]
    user_ids = {incident.lead_id for incident in incidents} | {incident.reporter_id for incident in incidents}
    users = {user.pk: user for user in known if user.pk in user_ids}
    if user_ids - users.keys():
        users.update(User.objects.in_bulk(user_ids - users.keys()))
    datasets: dict[int, Dataset] = {}
    datasets_of: dict[int, list[Dataset]] = {pk: [] for pk in ids}
    for pair in _visible_pairs(ids, by).select_related("dataset__data_source"):
        dataset = datasets.setdefault(pair.dataset_id, pair.dataset)
        datasets_of[pair.incident_id].append(dataset)

    def order(dataset: Dataset) -> tuple[Any, ...]:
        return (dataset.data_source.name, dataset.name, dataset.pk) if datasets_by_name else (dataset.pk,)

    links_of: dict[int, list[IncidentCheckResult]] = {pk: [] for pk in ids}
    if links:
        found = list(_visible_result_links(ids, by).select_related("check_result__check_ref"))
        # A result's dataset is one of its incident's datasets (they are kept equal); any other is
        # read once rather than per result.
        strays = {link.check_result.dataset_id for link in found} - datasets.keys()
        datasets.update(Dataset.objects.select_related("data_source").in_bulk(strays))
        for link in found:
            link.check_result.dataset = datasets[link.check_result.dataset_id]
            links_of[link.incident_id].append(link)
    for incident in incidents:
        incident.lead = users[incident.lead_id]
        incident.reporter = users[incident.reporter_id]
        incident.visible_datasets = sorted(datasets_of[incident.pk], key=order)  # type: ignore[attr-defined]
        if links:
            incident.visible_links = links_of[incident.pk]  # type: ignore[attr-defined]


class UserRow(NamedTuple):
    id: int
    email: str
    name: str


class DatasetRow(NamedTuple):
    id: int
    name: str
    data_source: str


class ResultRow(NamedTuple):
    id: int
    check_id: int
    check_name: str
    dataset_id: int
    dataset_name: str
    outcome: str
    value: float | None
    data_timestamp: datetime


@dataclass(slots=True)
class IncidentDetails:
    """What an incident's representation shows beyond its own columns, as plain rows.

    Only datasets and results the caller can view (as with_details); datasets by id, results in
    LINKED_RESULTS_ORDER (newest data first).
    """

    lead: UserRow
    reporter: UserRow
    datasets: list[DatasetRow]
    results: list[ResultRow]


def details_of(incidents: list[Incident], *, by: User) -> dict[int, IncidentDetails]:
    """The details of a page of incidents, by incident id, in three statements (four with a stray).

    The same rows as _load_details reads, as tuples: the API's list answers straight from them, and
    building Django model instances for the ~500 related rows of a 50-incident page was half of
    the page's time.
    """
    ids = [incident.pk for incident in incidents]
    user_ids = {incident.lead_id for incident in incidents} | {incident.reporter_id for incident in incidents}
    users = {
        row[0]: UserRow(*row)
        for row in User.objects.filter(pk__in=user_ids).values_list("id", "email", "name")
    }
    datasets: dict[int, DatasetRow] = {}
    datasets_of: dict[int, list[DatasetRow]] = {pk: [] for pk in ids}
    pairs = _visible_pairs(ids, by).values_list(
        "incident_id", "dataset_id", "dataset__name", "dataset__data_source__name"
    )
    for incident_id, dataset_id, name, data_source in pairs:
        row = datasets.setdefault(dataset_id, DatasetRow(dataset_id, name, data_source))
        datasets_of[incident_id].append(row)
    links = list(
        _visible_result_links(ids, by).values_list(
            "incident_id",
            "check_result_id",
            "check_result__check_ref_id",
            "check_result__check_ref__name",
            "check_result__dataset_id",
            "check_result__outcome",
            "check_result__value",
            "check_result__data_timestamp",
        )
    )
    # As in _load_details: a result's dataset is one of its incident's, any other is read once.
    names = {pk: row.name for pk, row in datasets.items()}
    strays = {link[4] for link in links} - names.keys()
    if strays:
        names.update(Dataset.objects.filter(pk__in=strays).values_list("id", "name"))
    results_of: dict[int, list[ResultRow]] = {pk: [] for pk in ids}
    for incident_id, result_id, check_id, check_name, dataset_id, outcome, value, data_timestamp in links:
        results_of[incident_id].append(
            ResultRow(
                result_id, check_id, check_name, dataset_id, names[dataset_id], outcome, value, data_timestamp
            )
        )
    return {
        incident.pk: IncidentDetails(
            lead=users[incident.lead_id],
            reporter=users[incident.reporter_id],
            datasets=sorted(datasets_of[incident.pk]),
            results=results_of[incident.pk],
        )
        for incident in incidents
    }


def details_from_loaded(incident: Incident) -> IncidentDetails:
    """The details of an incident already loaded by with_details (or a write), as rows."""

    def user_row(user: User) -> UserRow:
        return UserRow(user.pk, user.email, user.name)

    return IncidentDetails(
        lead=user_row(incident.lead),
        reporter=user_row(incident.reporter),
        datasets=[
            DatasetRow(d.pk, d.name, d.data_source.name)
            for d in incident.visible_datasets  # type: ignore[attr-defined]
        ],
        results=[
            ResultRow(
                r.pk,
                r.check_ref_id,
                r.check_ref.name,
                r.dataset_id,
                r.dataset.name,
                r.outcome,
                r.value,
                r.data_timestamp,
            )
            for r in (link.check_result for link in incident.visible_links)  # type: ignore[attr-defined]
        ],
    )


def find_incidents(filters: IncidentFilters, *, by: User) -> tuple[QuerySet[Incident], StatusCounts]:
    """The incidents the filters choose, and how many match per status (whatever filters.statuses
    says, so each count tells what choosing that status gives): a list page's two halves, sharing
    one read of the full-text index for a title search."""
    search = TitleSearch.read(filters.search)
    return list_incidents(filters, by=by, search=search), status_counts(filters, by=by, search=search)


def list_incidents(
    filters: IncidentFilters, *, by: User, search: TitleSearch | None = None
) -> QuerySet[Incident]:
    """The incidents the filters choose, newest first. `search`: filters.search already read."""
    incidents = visible_incidents(by)
    _check_choices("status", filters.statuses, Status.values)
    _check_choices("severity", filters.severities, Severity.values)
    if filters.statuses:
        incidents = incidents.filter(status__in=filters.statuses)
    if filters.severities:
        incidents = incidents.filter(severity__in=filters.severities)
    if filters.lead_ids:
        incidents = incidents.filter(lead_id__in=filters.lead_ids)
    if filters.reporter_ids:
        incidents = incidents.filter(reporter_id__in=filters.reporter_ids)
    if filters.incident_ids:
        incidents = incidents.filter(id__in=filters.incident_ids)
    if filters.dataset_ids:
        # Only datasets the caller can view: filtering by a private one must not reveal its incidents.
        dataset_ids = access.viewable_among(by, filters.dataset_ids)
        # `id IN (incidents of these datasets)`, not a correlated EXISTS: the planner can then start
        # from the few incidents of the datasets instead of probing every incident newest first
        # (0.4 s on SQLite at 1,000,000 incidents for a dataset with a hundred).
        incidents = incidents.filter(
            pk__in=IncidentDataset.objects.filter(dataset_id__in=dataset_ids).values("incident_id")
        )
    if filters.search.strip():
        found = _read_unless_given(filters.search, search)
        if found.common:
            # Many titles match: the ordered index walk finds a page of them after a few hundred
            # rows, checking each title itself; the full-text list would first collect and sort
            # every match (2 s for "row count" at 1,000,000 incidents).
            incidents = incidents.filter(_words_start(search_words(filters.search)))
        elif found.first is not None:
            # Fewer than SQLITE_COMMON_MATCHES: these are all the matches.
            incidents = incidents.filter(_pk_in_list(found.first))
        else:
            incidents = incidents.filter(title_matches(filters.search))
    if filters.created_from:
        incidents = incidents.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        incidents = incidents.filter(created_at__lt=filters.created_to)
    return incidents.order_by("-created_at", "-id")


# A word of a search: letters and digits. Both databases' full-text indexes split titles at
# everything else (spaces, punctuation, underscores), so searching "orders_daily" looks for the
# words "orders" and "daily".
SEARCH_WORD = re.compile(r"[^\W_]+")
TITLE_FTS = "incidents_incident_title_fts"


def search_words(search: str) -> list[str]:
    return list(dict.fromkeys(SEARCH_WORD.findall(search.lower())))[:20]


class _TitleTsMatch(Func):
    """PostgreSQL: the title's tsvector matches a tsquery, written as the GIN index's expression.

    The title is compiled as a column of whatever alias the query gives the table, so the filter
    stays right inside subqueries (where Django names the table U0).
    """

    output_field = BooleanField()

    def __init__(self, title: F, tsquery: str) -> None:
        super().__init__(title)
        self.tsquery = tsquery

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        title_sql, title_params = compiler.compile(self.source_expressions[0])
        sql = f"to_tsvector('simple'::regconfig, {title_sql}) @@ to_tsquery('simple'::regconfig, %s)"
        return sql, [*title_params, self.tsquery]


class _AnyOfArray(Func):
    """PostgreSQL: `pk = ANY(ARRAY(subquery))`. The subquery runs once, and each id it gives is
    looked up by primary key; with `pk IN (subquery)` the planner hashed the subquery's 10,001 ids
    and scanned the whole incidents table against them (0.39 s against 0.09 s at 1,000,000)."""

    output_field = BooleanField()

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        column_sql, column_params = compiler.compile(self.source_expressions[0])
        subquery_sql, subquery_params = compiler.compile(self.source_expressions[1])
        return f"{column_sql} = ANY(ARRAY{subquery_sql})", [*column_params, *subquery_params]


def _pk_among(ids: QuerySet[Any]) -> Q:
    """Incidents whose id is among those `ids` (a bounded subquery of ids) selects."""
    if connection.vendor == "postgresql":
        return Q(_AnyOfArray(F("pk"), Subquery(ids)))
    return Q(pk__in=ids)


def title_matches(search: str) -> Q:
    """A filter for titles holding every word of `search`, each as a word or the start of one.

    "load" finds "Nightly load failed" and "Loader stuck"; "oad" finds neither. Served by the
    full-text index the migration 0004_title_search made (FTS5 on SQLite, GIN on PostgreSQL).
    A search with no letters or digits in it matches nothing.
    """
    words = search_words(search)
    if not words:
        return Q(pk__in=[])
    if connection.vendor == "postgresql":
        return Q(_TitleTsMatch(F("title"), " & ".join(f"{word}:*" for word in words)))
    # The FTS table's rowid is the incident's id; as an IN list the filter names no outer table.
    return Q(
        pk__in=RawSQL(  # noqa: S611 (constant SQL; the search is a parameter)
            f"SELECT rowid FROM {TITLE_FTS} WHERE {TITLE_FTS} MATCH %s",  # noqa: S608
            [_fts_query(words)],
        )
    )


# Up to this many matches SQLite reads them from the full-text index and sorts them; with more, it
# walks the list's index and checks each title (see list_incidents).
SQLITE_COMMON_MATCHES = 10_000


@dataclass(frozen=True)
class TitleSearch:
    """A title search, read from the full-text index once for a page's list and its counts.

    On SQLite `first` holds the ids of up to SQLITE_COMMON_MATCHES (at least SEARCH_COUNT_CAP + 1)
    matching incidents. FTS5 reads every index entry of a prefix search before it gives the first
    match (13-27 ms for "row count" at 1,000,000 incidents, however small the LIMIT), and a page
    used to make it do so two or three times: to choose how to list, to list and to count. On
    PostgreSQL (`first` is None) each query matches the GIN index itself, which stops early.
    """

    search: str
    first: list[int] | None = None

    @classmethod
    def read(cls, search: str) -> TitleSearch:
        words = search_words(search)
        if connection.vendor != "sqlite" or not words:
            return cls(search)
        # Enough to tell common words from rare ones, and to count within.
        enough = max(SQLITE_COMMON_MATCHES, SEARCH_COUNT_CAP + 1)
        # A title holding the words themselves matches too, and FTS5 reads a whole word's entries
        # only as far as the LIMIT: for common words this finds enough matches without the prefix
        # search (1.9 against 15 ms for "row count" at 1,000,000 incidents).
        whole_words = _fts_ids(_fts_query(words, prefix=False), enough)
        if len(whole_words) >= SQLITE_COMMON_MATCHES:
            return cls(search, whole_words)
        return cls(search, _fts_ids(_fts_query(words), enough))

    @property
    def common(self) -> bool:
        """So many titles match that walking the newest incidents finds a page of them sooner."""
        return self.first is not None and len(self.first) >= SQLITE_COMMON_MATCHES


def _read_unless_given(search: str, given: TitleSearch | None) -> TitleSearch:
    if given is not None and given.search == search:
        return given
    return TitleSearch.read(search)


def _pk_in_list(ids: list[int]) -> Q:
    """SQLite: incidents among these ids, passed as one JSON parameter rather than one per id."""
    return Q(pk__in=RawSQL("SELECT value FROM json_each(%s)", [json.dumps(ids)]))


def _first_title_matches(search: str, limit: int) -> tuple[Q, Callable[[], int]]:
    """PostgreSQL: a filter for the first `limit` incidents whose titles match `search`, in the
    index's own order (not sorted by date first), and a function counting them."""
    matches = Incident.objects.filter(title_matches(search)).order_by().values("pk")[:limit]
    return _pk_among(matches), matches.count


def _fts_query(words: list[str], *, prefix: bool = True) -> str:
    star = "*" if prefix else ""
    return " AND ".join(f'"{word}"{star}' for word in words)


def _fts_ids(query: str, limit: int) -> list[int]:
    """SQLite: the ids of up to `limit` incidents whose titles match an FTS5 query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rowid FROM {TITLE_FTS} WHERE {TITLE_FTS} MATCH %s LIMIT %s",  # noqa: S608
            [query, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _words_start(words: list[str]) -> Q:
    """Titles in which each word starts a word: the full-text match, checked row by row."""
    condition = Q()
    for word in words:
        condition &= Q(title__iregex=r"(?:^|[\W_])" + re.escape(word))
    return condition


def get_incident(incident_id: int, *, by: User) -> Incident:
    incident = with_details(visible_incidents(by), by).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    return mark_checked(incident, by)


def incident_alone(incident_id: int, *, by: User) -> Incident:
    """The incident if `by` can see it, without its details (for details_of); NotFound otherwise."""
    incident = visible_incidents(by).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    return incident


def checked_incident(incident: Incident | int, *, by: User) -> Incident:
    """The incident with its details, visible to `by`: as given when a service already fetched it
    for them (see quell.lib.seen), fetched and checked otherwise."""
    if isinstance(incident, Incident) and checked_for(incident, by):
        return incident
    return get_incident(incident.pk if isinstance(incident, Incident) else incident, by=by)


def get_incident_by_number(number: int, *, by: User) -> Incident:
    incident = with_details(visible_incidents(by), by).filter(number=number).first()
    if incident is None:
        raise NotFound(f"Incident #{number} not found.")
    return mark_checked(incident, by)


def can_manage(incident: Incident, by: User) -> bool:
    """Whether the caller holds Manage Incidents on at least one of the incident's datasets."""
    if by.is_admin:
        return by.is_active
    dataset_ids = set(IncidentDataset.objects.filter(incident=incident).values_list("dataset_id", flat=True))
    return any(
        access.MANAGE_INCIDENTS in perms for perms in access.permissions_on_many(by, dataset_ids).values()
    )


def timeline(incident: Incident | int, *, by: User) -> list[TimelineEvent]:
    incident = checked_incident(incident, by=by)
    visible_result_ids = {link.check_result_id for link in incident.visible_links}  # type: ignore[attr-defined]
    events = incident.timeline.select_related("actor", "check_result__check_ref").order_by("created_at", "id")
    # An attached result from a dataset the caller cannot view is not theirs to see, nor its event.
    return [
        event
        for event in events
        if event.kind != EventKind.RESULT_ATTACHED or event.check_result_id in visible_result_ids
    ]


# --- Reading for the web pages -------------------------------------------------------------------

# How lists may be ordered; each ends with a unique column so pages never overlap, and each has an
# index in the same order (see Incident.Meta.indexes). Severities sort as text: critical < major <
# minor, so ascending severity is most severe first.
SORTS: dict[str, tuple[str, ...]] = {
    "created": ("-created_at", "-id"),
    "updated": ("-updated_at", "-id"),
    "severity": ("severity", "-created_at", "-id"),
}
assert sorted(Severity.values) == [Severity.CRITICAL, Severity.MAJOR, Severity.MINOR]


def sort_incidents(incidents: QuerySet[Incident], sort: str) -> QuerySet[Incident]:
    """Order by one of SORTS: newest created (the default), last updated, or most severe first."""
    _check_sort(sort)
    return incidents.order_by(*SORTS[sort])


def _check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise Invalid(
            f"sort must be one of {', '.join(SORTS)}, not {sort!r}.", code="invalid_sort", field="sort"
        )


# --- Keyset pages ---------------------------------------------------------------------------------

CURSOR_SALT = "quell.incidents.cursor"


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with these sort values, in this sort.

    Opaque to clients and signed, so a cursor cannot be forged into another query; `page` is the
    number of the page it leads to, for showing.
    """

    sort: str
    after: tuple[str, ...]
    page: int

    def encode(self) -> str:
        return signing.dumps([self.sort, list(self.after), self.page], salt=CURSOR_SALT, compress=True)

    @classmethod
    def decode(cls, value: str, sort: str) -> Cursor:
        try:
            cursor_sort, after, page = signing.loads(value, salt=CURSOR_SALT)
            cursor = cls(str(cursor_sort), tuple(str(v) for v in after), int(page))
            if cursor.sort not in SORTS or len(cursor.after) != len(SORTS[cursor.sort]):
                raise ValueError(cursor)
            _after_values(cursor)
        except (signing.BadSignature, ValueError, TypeError):
            raise Unprocessable(
                "The cursor is not one this list gave out; start again from the first page.",
                code="invalid_cursor",
                field="cursor",
            ) from None
        if cursor.sort != sort:
            raise Unprocessable(
                f"The cursor belongs to a list sorted by {cursor.sort}, not {sort}.",
                code="invalid_cursor",
                field="cursor",
            )
        return cursor

    @classmethod
    def following(cls, row: Incident, sort: str, page: int) -> Cursor:
        values: list[str] = []
        for name in SORTS[sort]:
            value = getattr(row, name.lstrip("-"))
            values.append(value.isoformat() if isinstance(value, datetime) else str(value))
        return cls(sort, tuple(values), page)


def _after_values(cursor: Cursor) -> list[Any]:
    """The cursor's values as the database compares them (ValueError when malformed)."""
    values: list[Any] = []
    for name, raw in zip(SORTS[cursor.sort], cursor.after, strict=True):
        column = name.lstrip("-")
        if column in ("created_at", "updated_at"):
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                raise ValueError(raw)
            values.append(connection.ops.adapt_datetimefield_value(moment))
        elif column == "id":
            values.append(int(raw))
        elif column == "severity":
            if raw not in Severity.values:
                raise ValueError(raw)
            values.append(raw)
    return values


def after_cursor(incidents: QuerySet[Incident], cursor: Cursor) -> QuerySet[Incident]:
    """The rows after the cursor's row in its sort, as a condition an index range scan serves.

    A row-value comparison `(created_at, id) < (?, ?)` lets both databases seek straight into the
    matching index, so page 10,000 costs what page 1 does (OFFSET reads and drops every row before).
    """
    values = _after_values(cursor)
    table = '"incidents_incident"'
    if cursor.sort == "severity":
        severity, created, pk = values
        same = RawSQL(  # noqa: S611 (constant SQL; values are parameters)
            f'{table}."severity" = %s AND ({table}."created_at", {table}."id") < (%s, %s)',
            [severity, created, pk],
            output_field=BooleanField(),
        )
        return incidents.filter(Q(same) | Q(severity__gt=severity))
    column = SORTS[cursor.sort][0].lstrip("-")
    moment, pk = values
    return incidents.filter(
        RawSQL(f'({table}."{column}", {table}."id") < (%s, %s)', [moment, pk], output_field=BooleanField())  # noqa: S611 (constant SQL; values are parameters)
    )


def for_list(incidents: QuerySet[Incident], by: User) -> QuerySet[Incident]:
    """What a row in a list of incidents shows (lead, reporter, visible datasets by name), in fixed queries."""
    return _with_loader(incidents, partial(_load_details, by=by, links=False, datasets_by_name=True))


# Above this many, a count that the tallies cannot answer stops counting and says "at least".
COUNT_CAP = 10_000
# A title search stops counting sooner. Its matches come from the full-text index, not from an
# index per status, so its counts read every match up to the cap; at 1,000,000 incidents common
# words match 186,000 titles, and reading 10,001 of them made the search 4-6x slower than at
# 10,000 incidents (docs/performance.md). Someone searching reads the first page and narrows the
# words; "1,000+" tells them as much as "10,000+" did.
SEARCH_COUNT_CAP = 1_000


@dataclass
class StatusCounts:
    """Incidents per status; for statuses in `at_least`, the count stopped at a cap (COUNT_CAP, or
    SEARCH_COUNT_CAP matches for a title search)."""

    counts: dict[str, int]
    at_least: set[str] = field(default_factory=set)
    # When counting stopped early: the largest total claimed (a lower bound's cap).
    most: int | None = None

    def total(self, statuses: list[str] | None = None) -> tuple[int, bool]:
        """The sum over these statuses (all when empty), and whether it is exact."""
        chosen = statuses or list(Status.values)
        total = sum(self.counts.get(s, 0) for s in chosen)
        exact = not (self.at_least & set(chosen))
        if not exact and self.most is not None:
            total = min(total, self.most)
        return total, exact


def _tallies_visible_to(by: User) -> QuerySet[IncidentTally]:
    """The IncidentTally rows that count what the (active) caller can see, each incident once."""
    if by.is_admin:
        return tallies.org_wide()
    return tallies.visible_to_member(access.dataset_ids_held_in_person(by))


def status_counts(filters: IncidentFilters, *, by: User, search: TitleSearch | None = None) -> StatusCounts:
    """How many incidents the caller can see match the filters, per status (filters.statuses ignored).

    Without filters, or with only dataset and severity filters, the answer is read from
    IncidentTally (a few rows, whatever the number of incidents). A title search counts within its
    first SEARCH_COUNT_CAP + 1 matches (`search`: filters.search already read). Other filters are
    counted, one status at a time, up to COUNT_CAP: each such count walks at most COUNT_CAP index
    entries.
    """
    if not by.is_active:
        return StatusCounts({})
    others = (
        filters.lead_ids
        or filters.reporter_ids
        or filters.incident_ids
        or filters.search.strip()
        or filters.created_from
        or filters.created_to
    )
    if not others:
        if filters.dataset_ids:
            # Datasets the caller can view only; every incident of a visible dataset is visible.
            chosen = access.viewable_among(by, filters.dataset_ids)
            if not chosen:
                return StatusCounts({})
            rows = tallies.touching(chosen)
        else:
            rows = _tallies_visible_to(by)
        return StatusCounts(tallies.summed(rows, severities=filters.severities))
    if filters.search.strip():
        # Count within the first SEARCH_COUNT_CAP + 1 titles the full-text index gives: one bounded
        # read of the index whatever the other filters. When the index had more, every count is a
        # lower bound. Any SEARCH_COUNT_CAP + 1 matches will do, so in the index's own order: with
        # the list's default ordering the database sorted every match by date first (all 100,000
        # titles holding "row count" at 1,000,000 incidents, twice per page view).
        found = _read_unless_given(filters.search, search)
        if found.first is not None:
            first = found.first[: SEARCH_COUNT_CAP + 1]
            among, count_matches = _pk_in_list(first), first.__len__
        else:
            among, count_matches = _first_title_matches(filters.search, SEARCH_COUNT_CAP + 1)
        rest = IncidentFilters(**{**filters.__dict__, "statuses": [], "search": ""})
        counted = dict(
            list_incidents(rest, by=by).filter(among).order_by().values_list("status").annotate(n=Count("id"))
        )
        if by.is_admin and rest == IncidentFilters():
            # Nothing else filters the matches: the counts add up to how many there were.
            capped = sum(counted.values()) > SEARCH_COUNT_CAP
        else:
            capped = count_matches() > SEARCH_COUNT_CAP
        if not capped:
            return StatusCounts(counted)
        # Among SEARCH_COUNT_CAP + 1 matches the counts can add up to one more than the cap; "at
        # least 1,001" claims no more than "at least 1,000" and reads worse.
        return StatusCounts(
            {status: min(n, SEARCH_COUNT_CAP) for status, n in counted.items()},
            set(Status.values),
            most=SEARCH_COUNT_CAP,
        )
    counts: dict[str, int] = {}
    at_least: set[str] = set()
    unfiltered = IncidentFilters(**{**filters.__dict__, "statuses": []})
    matching = list_incidents(unfiltered, by=by).order_by()
    for status in Status.values:
        n = matching.filter(status=status).values("pk")[: COUNT_CAP + 1].count()
        if n > COUNT_CAP:
            n = COUNT_CAP
            at_least.add(status)
        if n:
            counts[status] = n
    return StatusCounts(counts, at_least)


@dataclass
class ListPage:
    """One page of a list, with the cursor of the next one (None on the last page)."""

    rows: list[Incident]
    number: int
    next_cursor: str | None
    total: int
    total_exact: bool


# From this many rows on, a page by number reads its ids before its rows (see page_of).
DEFERRED_OFFSET = 1_000


def page_of(
    incidents: QuerySet[Incident],
    counts: StatusCounts,
    statuses: list[str],
    *,
    sort: str = "created",
    size: int,
    page: int = 0,
    cursor: str = "",
) -> ListPage:
    """A page by number (OFFSET, as Soda clients page) or, faster at any depth, after a cursor."""
    _check_sort(sort)
    incidents = incidents.order_by(*SORTS[sort])
    start = page * size
    if cursor:
        position = Cursor.decode(cursor, sort)
        page = position.page
        rows = list(after_cursor(incidents, position)[: size + 1])
        more = len(rows) > size
    elif start >= DEFERRED_OFFSET:
        # The ids first, then their rows: the database skips the rows before the page in the
        # list's index alone instead of reading each whole row (page 10,000 at 1,000,000
        # incidents: 19 → 11 ms of SQL on SQLite, 80 → 27 ms on PostgreSQL).
        ids = list(incidents.values_list("pk", flat=True)[start : start + size + 1])
        more = len(ids) > size
        rows = list(incidents.filter(pk__in=ids[:size])) if ids else []
    else:
        rows = list(incidents[start : start + size + 1])
        more = len(rows) > size
    rows = rows[:size]
    total, exact = counts.total(statuses)
    next_cursor = Cursor.following(rows[-1], sort, page + 1).encode() if more and rows else None
    return ListPage(rows, page, next_cursor, total, exact)


PEOPLE_SEARCH_WORDS = 10


def people_matching(people: QuerySet[User], search: str) -> QuerySet[User]:
    """The people whose name or email contains every word of `search`, ignoring case."""
    for word in search.split()[:PEOPLE_SEARCH_WORDS]:
        people = people.filter(Q(name__icontains=word) | Q(email__icontains=word))
    return people


def people_in_incidents(*, by: User, search: str = "") -> QuerySet[User]:
    """Users who lead or reported at least one incident: the choices of the lead and reporter filters.

    Everyone else would find nothing, and listing every user does not scale to thousands. Each user
    costs one probe of the lead and reporter indexes. `search` keeps those whose name or email
    contains every word.
    """
    if not by.is_active:
        return User.objects.none()
    people = User.objects.filter(
        Exists(Incident.objects.filter(lead=OuterRef("pk")))
        | Exists(Incident.objects.filter(reporter=OuterRef("pk")))
    ).order_by("name", "email", "id")
    return people_matching(people, search)


def count_by(incidents: QuerySet[Incident], field_name: str) -> dict[str, int]:
    """How many of these incidents have each value of `field_name` (status or severity), in one query."""
    rows = incidents.order_by().values_list(field_name).annotate(n=Count("id"))
    return dict(rows)


def open_by_severity(*, by: User) -> dict[str, int]:
    """How many open incidents the caller can see, per severity, from the kept counters."""
    if not by.is_active:
        return {}
    return tallies.summed(_tallies_visible_to(by), "severity", statuses=OPEN_STATUSES)


def lead_candidates(dataset_ids: set[int], *, by: User, search: str = "") -> QuerySet[User]:
    """Active users who hold Manage incidents on at least one of these datasets: the people who may
    lead an incident of them (see _lead), and who may change it.

    Only datasets the caller can view count, so the list reveals nothing about private ones. `search`
    keeps those whose name or email contains every word. A role counts when it grants View dataset
    too (every role a service makes does; one without it grants nothing).
    """
    ids = access.viewable_among(by, dataset_ids)
    if not ids:
        return User.objects.none()
    users = people_matching(User.objects.filter(is_active=True).order_by("name", "email", "id"), search)
    managing = Responsibility.objects.filter(
        dataset_id__in=ids, role__view_dataset=True, role__manage_incidents=True
    )
    if managing.filter(group__is_everyone=True).exists():
        return users
    group_ids = managing.filter(group__isnull=False).values("group_id")
    members = UserGroup.members.through.objects.filter(usergroup_id__in=group_ids).values("user_id")
    return users.filter(
        Q(global_role="admin")
        | Q(pk__in=managing.filter(user__isnull=False).values("user_id"))
        | Q(pk__in=members)
    )


def may_manage_incidents_on(dataset: Dataset, *, by: User) -> bool:
    """Whether the caller may create incidents from this dataset's results (Manage incidents on it)."""
    return access.MANAGE_INCIDENTS in access.permissions_on(by, dataset.pk)


def require_manage_incidents_on(dataset: Dataset, *, by: User) -> None:
    access.require(by, dataset, access.MANAGE_INCIDENTS, "create incidents from its check results")


def attachable_results(
    incident: Incident | int, *, by: User, search: str = "", limit: int = 50
) -> list[CheckResult]:
    """Warn and fail results the caller could include in the incident, newest first.

    They come from the incident's datasets on which the caller holds Manage incidents, and are not
    linked yet. `search` keeps results whose check name contains every word.
    """
    incident = checked_incident(incident, by=by)
    dataset_ids = access.datasets_with(by, access.MANAGE_INCIDENTS).filter(incidents=incident).values("pk")
    results = CheckResult.objects.filter(dataset_id__in=dataset_ids, outcome__in=FAILING_OUTCOMES).exclude(
        pk__in=IncidentCheckResult.objects.filter(incident=incident).values("check_result_id")
    )
    for word in search.split():
        results = results.filter(check_ref__name__icontains=word)
    return list(
        results.select_related("check_ref", "dataset__data_source").order_by("-data_timestamp", "-id")[:limit]
    )


def changes_since(incident: Incident | int, version: int, *, by: User) -> list[TimelineEvent]:
    """The timeline events that took the incident from `version` to its current version.

    Every write that bumps the version (creation, a save, an attachment) records its events with one
    timestamp, so the changes since version v are the event groups after the first v.
    """
    incident = checked_incident(incident, by=by)
    visible_result_ids = {link.check_result_id for link in incident.visible_links}  # type: ignore[attr-defined]
    events = list(
        incident.timeline.exclude(kind=EventKind.COMMENT)
        .select_related("actor", "check_result__check_ref")
        .order_by("created_at", "id")
    )
    groups: list[list[TimelineEvent]] = []
    for event in events:
        if groups and groups[-1][0].created_at == event.created_at:
            groups[-1].append(event)
        else:
            groups.append([event])
    return [
        event
        for group in groups[max(version, 0) :]
        for event in group
        if event.kind != EventKind.RESULT_ATTACHED or event.check_result_id in visible_result_ids
    ]


def linked_incidents(result_ids: list[int], *, by: User) -> dict[int, list[Incident]]:
    """For each of these check results, the incidents it is part of (oldest link first).

    Whoever can see a result can see every incident that links it, since such an incident includes
    the result's dataset; results the caller cannot see are left out.
    """
    links = (
        access.only_viewable(
            IncidentCheckResult.objects.filter(check_result_id__in=result_ids), by, "check_result__dataset_id"
        )
        .select_related("incident")
        .order_by("added_at", "id")
    )
    found: dict[int, list[Incident]] = {}
    for link in links:
        found.setdefault(link.check_result_id, []).append(link.incident)
    return found


# What a mention of an open incident beside a result shows (a link: number and title).
OPEN_INCIDENT_SHOWN = ("number", "title", "status", "created_at")
# How many of a check's open incidents the Create Incident dialog offers to add results to.
OPEN_INCIDENTS_OFFERED = 3


def open_incidents_of_results(result_ids: Iterable[int], *, by: User) -> dict[int, list[Incident]]:
    """For each of these check results, the open (not resolved) incidents it is in, newest first:
    one query for them all. Results in none are left out.

    Only incidents the caller can view (visible_incidents' rule, however many datasets they span)
    and only results the caller can view, so neither a hidden incident's number and title nor a
    hidden result's place in an incident shows. An incident is one instance however many results
    it holds, with OPEN_INCIDENT_SHOWN loaded.
    """
    ids = list(result_ids)
    if not ids or not by.is_active:
        return {}
    links = IncidentCheckResult.objects.filter(check_result_id__in=ids, incident__status__in=OPEN_STATUSES)
    links = access.only_viewable(links, by, "check_result__dataset_id")
    if not by.is_admin:
        links = links.filter(_on_a_dataset_with(by, access.VIEW, "incident_id"))
    shown = ("check_result_id", "incident", *(f"incident__{name}" for name in OPEN_INCIDENT_SHOWN))
    found: dict[int, list[Incident]] = {}
    shared: dict[int, Incident] = {}
    for link in (
        links.select_related("incident").only(*shown).order_by("-incident__created_at", "-incident_id")
    ):
        incident = shared.setdefault(link.incident_id, link.incident)
        found.setdefault(link.check_result_id, []).append(incident)
    return found


def open_incidents_of_check(check: Check, *, by: User, limit: int = OPEN_INCIDENTS_OFFERED) -> list[Incident]:
    """The open incidents the caller can view that hold any result of this check, newest first, at
    most `limit`, in one query. Each has `can_change`: whether the caller may change it (Manage
    incidents on one of its datasets, as can_manage and so attach_check_results ask).

    `check` is one catalog.services.get_check fetched for `by` (quell.lib.seen), or one on a
    dataset they can view; otherwise NotFound.
    """
    if not checked_for(check, by) and access.VIEW not in access.permissions_on(by, check.dataset_id):
        raise NotFound(f"Check {check.pk} not found.")
    # An incident holding a result of the check is on the check's dataset (an incident's datasets
    # include its results'), which the caller can view: so it is visible to them (visible_incidents),
    # and the few incidents of that dataset, read through incident_dataset_by_dataset, are all that
    # need probing, not the check's whole history of results.
    holding = IncidentCheckResult.objects.filter(
        incident=OuterRef("incident_id"), check_result__check_ref_id=check.pk
    )
    pairs = IncidentDataset.objects.filter(
        Exists(holding), dataset_id=check.dataset_id, incident__status__in=OPEN_STATUSES
    )
    can_change: Exists | Value = (
        Value(True) if by.is_admin else _on_a_dataset_with(by, access.MANAGE_INCIDENTS, "incident_id")
    )
    rows = (
        pairs.annotate(can_change=can_change)
        .select_related("incident")
        .only("incident", *(f"incident__{name}" for name in OPEN_INCIDENT_SHOWN))
        .order_by("-incident__created_at", "-incident_id")[:limit]
    )
    found = []
    for pair in rows:
        pair.incident.can_change = pair.can_change  # type: ignore[attr-defined]
        found.append(pair.incident)
    return found


def datasets_needing_attention(*, by: User) -> QuerySet[Dataset]:
    """Datasets the caller can view whose checks warn or fail now and that have no open incident,
    most failing checks first.

    Read from the counts kept on each dataset (quell.catalog.counters) through the partial index of
    exactly these datasets: probing every failing dataset for an open incident took most of the home
    page's time at 1,000,000 incidents.
    """
    # Only these few datasets are probed for the caller's view permission: a member's whole list of
    # viewable datasets (7,000 at 1,000,000 incidents) took 23 ms to build on PostgreSQL.
    unattended = Dataset.objects.filter(failing_check_count__gt=0, open_incident_count=0)
    return (
        access.only_viewable(unattended, by, "pk")
        .select_related("data_source")
        .order_by("-failing_check_count", "data_source__name", "name", "id")
    )


# --- Writing --------------------------------------------------------------------------------------


def create_incident(
    *,
    by: User,
    title: str,
    check_result_ids: list[int],
    description: str = "",
    severity: str = Severity.MAJOR,
    lead_id: int | None = None,
    status: str = Status.REPORTED,
    resolution_notes: str = "",
) -> Incident:
    title = _clean_title(title)
    description = _clean_text("description", description, DESCRIPTION_MAX)
    _check_choices("severity", [severity], Severity.values)
    _check_choices("status", [status], Status.values)
    resolution_notes = _clean_text("resolution notes", resolution_notes, DESCRIPTION_MAX, "resolutionNotes")
    if status == Status.RESOLVED and not resolution_notes:
        raise _notes_required()
    if not check_result_ids:
        raise Invalid(
            "An incident needs at least one warn or fail check result.",
            code="check_results_required",
            field="checkResultIds",
        )
    results = _failing_results(check_result_ids, by)
    datasets = {result.dataset_id: result.dataset for result in results}
    access.require_on_each(
        by, list(datasets.values()), access.MANAGE_INCIDENTS, "create an incident from its check results"
    )
    lead = by if lead_id is None else _lead(lead_id, set(datasets))

    with transaction.atomic():
        now = timezone.now()
        incident = Incident.objects.create(
            number=NumberSequence.next_value("incident"),
            title=title,
            description=description,
            severity=severity,
            status=status,
            lead=lead,
            reporter=by,
            created_at=now,
            updated_at=now,
            resolved_at=now if status == Status.RESOLVED else None,
            resolution_notes=resolution_notes,
        )
        IncidentDataset.objects.bulk_create(
            IncidentDataset(incident=incident, dataset_id=ds) for ds in datasets
        )
        links = IncidentCheckResult.objects.bulk_create(
            IncidentCheckResult(incident=incident, check_result=result, added_by=by, added_at=now)
            for result in results
        )
        events = [
            TimelineEvent(incident=incident, kind=EventKind.CREATED, actor=by, created_at=now, text=title)
        ]
        events += [
            TimelineEvent(
                incident=incident,
                kind=EventKind.RESULT_ATTACHED,
                actor=by,
                created_at=now,
                check_result=result,
            )
            for result in results
        ]
        TimelineEvent.objects.bulk_create(events)
        domain_events.record(
            IncidentCreated(incident=incident, dataset_ids=frozenset(datasets), results=results, by=by)
        )
    return _as_created(incident, by, datasets, links)


# Fields a caller may change, and the names the timeline records them under (the API's names).
TIMELINE_FIELD_NAMES = {
    "title": "title",
    "description": "description",
    "severity": "severity",
    "status": "status",
    "resolution_notes": "resolutionNotes",
    "lead_id": "lead",
}
EDITABLE_FIELDS = tuple(TIMELINE_FIELD_NAMES)


def update_incident(incident_id: int, *, by: User, version: int | None = None, **changes: Any) -> Incident:
    """Change any of EDITABLE_FIELDS. Unchanged values are ignored; a stale `version` is a Conflict."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))}.")
    changes = {key: value for key, value in changes.items() if value is not None}

    with transaction.atomic():
        incident = _incident_for_change(incident_id, by, version)
        dataset_ids = _dataset_ids_of(incident)
        new: dict[str, Any] = {}
        if "title" in changes:
            new["title"] = _clean_title(changes["title"])
        if "description" in changes:
            new["description"] = _clean_text("description", changes["description"], DESCRIPTION_MAX)
        if "severity" in changes:
            _check_choices("severity", [changes["severity"]], Severity.values)
            new["severity"] = changes["severity"]
        if "status" in changes:
            _check_choices("status", [changes["status"]], Status.values)
            new["status"] = changes["status"]
        if "resolution_notes" in changes:
            new["resolution_notes"] = _clean_text(
                "resolution notes", changes["resolution_notes"], DESCRIPTION_MAX, "resolutionNotes"
            )
        new_lead: User | None = None
        if "lead_id" in changes and changes["lead_id"] != incident.lead_id:
            new_lead = _lead(int(changes["lead_id"]), dataset_ids)
            new["lead_id"] = new_lead.pk
        new = {key: value for key, value in new.items() if getattr(incident, key) != value}

        final_status = new.get("status", incident.status)
        final_notes = new.get("resolution_notes", incident.resolution_notes)
        if final_status == Status.RESOLVED and not final_notes:
            raise _notes_required(kept=True)
        if not new:
            return _as_written(incident, by)

        now = timezone.now()
        changes_from = {key: getattr(incident, key) for key in new}
        events: list[TimelineEvent] = []
        for key, value in new.items():
            old = getattr(incident, key)
            field_name = TIMELINE_FIELD_NAMES[key]
            reopened = key == "status" and old == Status.RESOLVED
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind=EventKind.REOPENED if reopened else EventKind.CHANGED,
                    actor=by,
                    created_at=now,
                    field=field_name,
                    old_value=old,
                    new_value=value,
                )
            )
            setattr(incident, key, value)
        if new_lead is not None:
            incident.lead = new_lead  # so the answer does not read it again
        if "status" in new:
            incident.resolved_at = now if final_status == Status.RESOLVED else None
        incident.updated_at = now
        incident.version += 1
        incident.save()
        TimelineEvent.objects.bulk_create(events)
        domain_events.record(
            IncidentChanged(
                incident=incident,
                by=by,
                status_before=changes_from.get("status", incident.status),
                severity_before=changes_from.get("severity", incident.severity),
                dataset_ids_before=frozenset(dataset_ids),
                dataset_ids=frozenset(dataset_ids),
                changes=events,
            )
        )
    return _as_written(incident, by)


def attach_check_results(
    incident_id: int, check_result_ids: list[int], *, by: User, version: int | None = None
) -> Incident:
    """Link more warn/fail results; results already linked are left as they are."""
    if not check_result_ids:
        raise Invalid(
            "Give at least one check result to attach.", code="check_results_required", field="checkResultIds"
        )
    with transaction.atomic():
        incident = _incident_for_change(incident_id, by, version)
        results = _failing_results(check_result_ids, by)
        access.require_on_each(
            by,
            list({result.dataset_id: result.dataset for result in results}.values()),
            access.MANAGE_INCIDENTS,
            "attach its check results to an incident",
        )
        linked, known_datasets = _links_and_datasets(incident, [result.pk for result in results])
        new_results = [result for result in results if result.pk not in linked]
        if not new_results:
            return _as_written(incident, by)
        now = timezone.now()
        added_datasets = {r.dataset_id for r in new_results} - known_datasets
        IncidentDataset.objects.bulk_create(
            IncidentDataset(incident=incident, dataset_id=ds) for ds in sorted(added_datasets)
        )
        IncidentCheckResult.objects.bulk_create(
            IncidentCheckResult(incident=incident, check_result=result, added_by=by, added_at=now)
            for result in new_results
        )
        TimelineEvent.objects.bulk_create(
            TimelineEvent(
                incident=incident,
                kind=EventKind.RESULT_ATTACHED,
                actor=by,
                created_at=now,
                check_result=result,
            )
            for result in new_results
        )
        incident.updated_at = now
        incident.version += 1
        incident.save(update_fields=["updated_at", "version"])
        domain_events.record(
            IncidentChanged(
                incident=incident,
                by=by,
                status_before=incident.status,
                severity_before=incident.severity,
                dataset_ids_before=frozenset(known_datasets),
                dataset_ids=frozenset(known_datasets | added_datasets),
                added_results=new_results,
            )
        )
    return _as_written(incident, by)


def add_comment(incident_id: int, text: str, *, by: User) -> TimelineEvent:
    with transaction.atomic():
        # Permission first: someone who may not comment learns nothing from a validation message.
        incident = _incident_for_change(incident_id, by, None)
        text = _clean_text("comment", text, COMMENT_MAX, "text")
        if not text:
            raise Invalid("A comment needs some text.", code="comment_empty", field="text")
        now = timezone.now()
        event = TimelineEvent.objects.create(
            incident=incident, kind=EventKind.COMMENT, actor=by, created_at=now, text=text
        )
        # A comment is activity, not an edit: it moves "last updated" but not the version, so it
        # never makes someone's open edit form stale.
        Incident.objects.filter(pk=incident.pk).update(updated_at=now)
    return event


# --- Helpers --------------------------------------------------------------------------------------


def _incident_for_change(incident_id: int, by: User, version: int | None) -> Incident:
    """The incident, locked for this transaction, after checking the caller may change it."""
    # Read, visibility and lock in one statement; `of` keeps the lock on the incident's row alone.
    # No join (lead, reporter): on PostgreSQL a read that waited for another writer's lock re-checks
    # the joined rows against the incident's new version, and a lead handed over meanwhile made the
    # incident vanish (404) for the waiting edit.
    incident = visible_incidents(by).select_for_update(of=("self",)).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    if not can_manage(incident, by):
        raise Forbidden(
            "You need the Manage incidents permission on one of this incident's datasets to change it."
        )
    if version is not None and version != incident.version:
        raise Conflict(
            f"Incident #{incident.number} was changed by someone else (your version {version}, "
            f"current {incident.version}). Reload it and apply your change again.",
            current={"id": incident.pk, "version": incident.version},
        )
    return incident


def _as_written(incident: Incident, by: User) -> Incident:
    """The incident a write just locked and saved, with the details its representation needs.

    Its fields are what the write stored, so only the details are read (not the row again), and
    the caller, and a lead or reporter already loaded with the row, are not read again either.
    """
    known = [by]
    if Incident.lead.is_cached(incident):
        known.append(incident.lead)
    if Incident.reporter.is_cached(incident):
        known.append(incident.reporter)
    _load_details([incident], by=by, links=True, datasets_by_name=False, known=known)
    return mark_checked(incident, by)


def _as_created(
    incident: Incident, by: User, datasets: dict[int, Dataset], links: list[IncidentCheckResult]
) -> Incident:
    """The incident create_incident just wrote, with the details `_as_written` would read back.

    All of them are at hand, so nothing is read (two statements per create): the caller could view
    every result the incident was made from (`_failing_results`), so every dataset, and the links
    are the rows just inserted, put in LINKED_RESULTS_ORDER.
    """
    for link in links:
        link.check_result.dataset = datasets[link.check_result.dataset_id]
    incident.visible_datasets = sorted(datasets.values(), key=lambda dataset: dataset.pk)  # type: ignore[attr-defined]
    by_id = sorted(links, key=lambda link: link.check_result_id)
    # A stable sort: within one data time the results stay in id order.
    incident.visible_links = sorted(  # type: ignore[attr-defined]
        by_id, key=lambda link: link.check_result.data_timestamp, reverse=True
    )
    return mark_checked(incident, by)


def _dataset_ids_of(incident: Incident) -> set[int]:
    return set(IncidentDataset.objects.filter(incident=incident).values_list("dataset_id", flat=True))


def _links_and_datasets(incident: Incident, check_result_ids: list[int]) -> tuple[set[int], set[int]]:
    """Which of these results the incident links already, and all its datasets, in one statement."""
    links = (
        IncidentCheckResult.objects.filter(incident=incident, check_result_id__in=check_result_ids)
        .order_by()
        .values_list(Value("result"), "check_result_id")
    )
    datasets = (
        IncidentDataset.objects.filter(incident=incident)
        .order_by()
        .values_list(Value("dataset"), "dataset_id")
    )
    linked: set[int] = set()
    dataset_ids: set[int] = set()
    for kind, pk in links.union(datasets, all=True):
        (linked if kind == "result" else dataset_ids).add(pk)
    return linked, dataset_ids


def _failing_results(check_result_ids: list[int], by: User) -> list[CheckResult]:
    ids = list(dict.fromkeys(check_result_ids))
    if len(ids) > MAX_RESULTS_PER_CALL:
        raise Invalid(f"At most {MAX_RESULTS_PER_CALL} check results at once.", field="checkResultIds")
    found = {
        result.pk: result
        for result in access.only_viewable(CheckResult.objects.filter(pk__in=ids), by).select_related(
            "dataset__data_source", "check_ref"
        )
    }
    missing = [str(result_id) for result_id in ids if result_id not in found]
    if missing:
        raise Unprocessable(
            f"Unknown check result ids: {', '.join(missing)}.",
            code="unknown_check_results",
            field="checkResultIds",
        )
    passing = [str(r.pk) for r in found.values() if r.outcome not in FAILING_OUTCOMES]
    if passing:
        raise Unprocessable(
            f"Only warn or fail results can be part of an incident; these are not: {', '.join(passing)}.",
            code="check_result_not_failing",
            field="checkResultIds",
        )
    return [found[result_id] for result_id in ids]


def _lead(user_id: int, dataset_ids: set[int]) -> User:
    """The user who is to lead an incident of these datasets: active, and able to change it.

    A lead who could not change the incident would find it under "Assigned to me" with no way to
    act on it, so a lead needs Manage incidents on at least one of its datasets, as changing it
    does (can_manage).
    """
    lead = User.objects.filter(pk=user_id, is_active=True).first()
    if lead is None:
        raise Unprocessable(
            f"There is no active user {user_id} to lead this incident.", code="unknown_lead", field="leadId"
        )
    perms = access.permissions_on_many(lead, dataset_ids)
    if not any(access.VIEW in p for p in perms.values()):
        # The older refusal keeps its code: clients written before the Manage rule match on it.
        raise Unprocessable(
            f"{lead.display_name} cannot view any of this incident's datasets, so cannot lead it.",
            code="lead_cannot_view",
            field="leadId",
        )
    if not any(access.MANAGE_INCIDENTS in p for p in perms.values()):
        raise Unprocessable(
            f"{lead.display_name} cannot lead this incident: a lead needs the Manage incidents "
            "permission on one of its datasets, to be able to change it.",
            code="lead_cannot_manage",
            field="leadId",
        )
    return lead


def check_title(title: str | None) -> str:
    """The title, stripped, or Invalid as create_incident and update_incident refuse it."""
    return _clean_title(title)


def _clean_title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise Invalid("An incident needs a title.", code="title_required", field="title")
    if len(title) > TITLE_MAX:
        raise Invalid(
            f"The title is longer than {TITLE_MAX} characters.", code="title_too_long", field="title"
        )
    return require_plain_text(title, "title", label="The title")


def _clean_text(name: str, text: str | None, limit: int, field: str = "") -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise Invalid(f"The {name} is longer than {limit} characters.", code="too_long", field=field or name)
    return require_plain_text(text, field or name, label=f"The {name}", multiline=True)


def _check_choices(name: str, values: list[str], allowed: list[str]) -> None:
    for value in values:
        if value not in allowed:
            raise Invalid(
                f"{name} must be one of {', '.join(allowed)}, not {value!r}.",
                code=f"invalid_{name}",
                field=name,
            )


def _notes_required(*, kept: bool = False) -> Invalid:
    """`kept`: for a change, which may rely on notes the incident keeps (a request alone cannot show
    the rule is met, so the API answers it as an Unprocessable, not as a schema violation)."""
    return (Unprocessable if kept else Invalid)(
        "A resolution note is required to resolve an incident: say what was done.",
        code="resolution_notes_required",
        field="resolutionNotes",
    )
