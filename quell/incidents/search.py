"""Title search: how a search for words in incident titles becomes SQL.

Both databases keep a full-text index of the titles (migration 0004_title_search): an FTS5 table on
SQLite, a GIN index on the titles' tsvector on PostgreSQL. Each answers a prefix search in its own
way and at its own cost, so the choices of how to read it (the index itself, a list of the ids it
gave, or a row-by-row check of the titles for words that match too many) live here, apart from the
lists and counts that use them (quell.incidents.queries).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Func, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.fields import BooleanField
from django.db.models.sql.compiler import SQLCompiler

from quell.incidents.models import Incident

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
# walks the list's index and checks each title (see list_filter).
SQLITE_COMMON_MATCHES = 10_000
# A title search stops counting sooner. Its matches come from the full-text index, not from an
# index per status, so its counts read every match up to the cap; at 1,000,000 incidents common
# words match 186,000 titles, and reading 10,001 of them made the search 4-6x slower than at
# 10,000 incidents (docs/performance.md). Someone searching reads the first page and narrows the
# words; "1,000+" tells them as much as "10,000+" did.
SEARCH_COUNT_CAP = 1_000


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


def list_filter(search: str, given: TitleSearch | None = None) -> Q:
    """The filter of a list of incidents (newest first) for titles matching `search`.

    `given`: the search already read (TitleSearch.read), so a page's list and counts read the
    full-text index once.
    """
    found = _read_unless_given(search, given)
    if found.common:
        # Many titles match: the ordered index walk finds a page of them after a few hundred
        # rows, checking each title itself; the full-text list would first collect and sort
        # every match (2 s for "row count" at 1,000,000 incidents).
        return _words_start(search_words(search))
    if found.first is not None:
        # Fewer than SQLITE_COMMON_MATCHES: these are all the matches.
        return _pk_in_list(found.first)
    return title_matches(search)


def first_matches(search: str, limit: int, given: TitleSearch | None = None) -> tuple[Q, Callable[[], int]]:
    """A filter for up to `limit` incidents whose titles match `search`, any of them (in the
    index's own order, not sorted by date first), and a function counting them. `given` as in
    list_filter."""
    found = _read_unless_given(search, given)
    if found.first is not None:
        first = found.first[:limit]
        return _pk_in_list(first), first.__len__
    return _first_title_matches(search, limit)


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
