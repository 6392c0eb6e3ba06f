"""What an incident's representation shows beyond its own columns: its lead and reporter, and the
datasets and linked results the caller can view.

Loaded for a page of incidents in a fixed number of statements, whatever its size: onto the
incidents (with_details, for_list) or as plain rows (details_of). A module of its own because both
sides need it: the reads (quell.incidents.queries) and the writes, which load the same details onto
the incident they return (quell.incidents.services). It is also the one place that decides which
linked datasets and results a caller may see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from django.db.models import QuerySet

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog.models import Dataset
from quell.incidents.models import (
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentQuerySet,
    IncidentRule,
)


def with_details(incidents: QuerySet[Incident], by: User) -> QuerySet[Incident]:
    """Load what an incident's representation needs in a fixed number of queries.

    Linked results and datasets the caller cannot view are left out, so an incident that spans a
    private dataset does not leak it. Each incident gets `visible_datasets` (by id) and
    `visible_links` (newest data first, LINKED_RESULTS_ORDER), its lead and reporter, and the rule
    that opened it.
    """
    return _with_loader(incidents, partial(load_details, by=by, links=True, datasets_by_name=False))


def _with_loader(
    incidents: QuerySet[Incident], loader: Callable[[list[Incident]], None]
) -> QuerySet[Incident]:
    assert isinstance(incidents, IncidentQuerySet), "incidents come from Incident.objects"
    return incidents.with_loader(loader)


def _visible_pairs(ids: list[int], by: User) -> QuerySet[IncidentDataset]:
    """The links of these incidents to the datasets the caller can view."""
    return permissions.only_viewable(IncidentDataset.objects.filter(incident_id__in=ids), by).order_by("id")


# An incident's results, newest data first; a scan's results (one data time) in the order it sent them.
LINKED_RESULTS_ORDER = ("-check_result__data_timestamp", "check_result_id")


def _visible_result_links(ids: list[int], by: User) -> QuerySet[IncidentCheckResult]:
    """The results linked to these incidents from datasets the caller can view, in LINKED_RESULTS_ORDER."""
    # The result's own dataset column. (Joining catalog_dataset let SQLite start from the datasets
    # and walk every result of every dataset: 0.5 s per page at 73,000 results.)
    rows = IncidentCheckResult.objects.filter(incident_id__in=ids)
    return permissions.only_viewable(rows, by, "check_result__dataset_id").order_by(*LINKED_RESULTS_ORDER)


def load_details(
    incidents: list[Incident], *, by: User, links: bool, datasets_by_name: bool, known: Iterable[User] = ()
) -> None:
    """Fill lead, reporter, rule, `visible_datasets` and (with `links`) `visible_links` for these incidents.

    Four statements whatever the number of incidents, and one more for the rules when a rule opened
    any of them (_rule_ids). Lead and reporter come by a query of their own rather than a join:
    with the users joined, SQLite (with approximate statistics) started from the users table and
    sorted every incident (5 s at 1,000,000); without it the page walks the sort's index. Shared
    rows (a dataset, a check) are one instance however many incidents show them. Users in `known`
    (already read by the caller) are not read again.
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
    rule_ids = _rule_ids(incident for incident in incidents if not Incident.rule.is_cached(incident))
    rules = IncidentRule.objects.in_bulk(rule_ids) if rule_ids else {}
    for incident in incidents:
        incident.lead = users[incident.lead_id]
        incident.reporter = users[incident.reporter_id]
        if not Incident.rule.is_cached(incident):
            # None for a rule since deleted whose id a row still holds (the key has no constraint).
            incident.rule = rules.get(incident.rule_id) if incident.rule_id is not None else None
        incident.visible_datasets = sorted(datasets_of[incident.pk], key=order)  # type: ignore[attr-defined]
        if links:
            incident.visible_links = links_of[incident.pk]  # type: ignore[attr-defined]


def _rule_ids(incidents: Iterable[Incident]) -> set[int]:
    """The rules that opened these incidents: read by a statement of their own, only when there are
    any (people opened them all: no statement), for the reason load_details reads the users apart."""
    return {incident.rule_id for incident in incidents if incident.rule_id is not None}


class UserRow(NamedTuple):
    id: int
    email: str
    name: str


class RuleRow(NamedTuple):
    id: int
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
    # The rule that opened it; None when a person did, or the rule is deleted.
    rule: RuleRow | None = None


def details_of(incidents: list[Incident], *, by: User) -> dict[int, IncidentDetails]:
    """The details of a page of incidents, by incident id, in three statements (four with a stray,
    one more when a rule opened any of them).

    The same rows as load_details reads, as tuples: the API's list answers straight from them, and
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
    # As in load_details: a result's dataset is one of its incident's, any other is read once.
    names = {pk: row.name for pk, row in datasets.items()}
    strays = {link[4] for link in links} - names.keys()
    if strays:
        names.update(Dataset.objects.filter(pk__in=strays).values_list("id", "name"))
    rule_ids = _rule_ids(incidents)
    rules = {
        row[0]: RuleRow(*row)
        for row in (
            IncidentRule.objects.filter(pk__in=rule_ids).values_list("id", "name") if rule_ids else ()
        )
    }
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
            rule=rules.get(incident.rule_id) if incident.rule_id is not None else None,
        )
        for incident in incidents
    }


def details_from_loaded(incident: Incident) -> IncidentDetails:
    """The details of an incident already loaded by with_details (or a write), as rows."""

    def user_row(user: User) -> UserRow:
        return UserRow(user.pk, user.email, user.name)

    rule = incident.rule if incident.rule_id is not None else None
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
        rule=RuleRow(rule.pk, rule.name) if rule is not None else None,
    )


def for_list(incidents: QuerySet[Incident], by: User) -> QuerySet[Incident]:
    """What a row in a list of incidents shows (lead, reporter, visible datasets by name), in fixed queries."""
    return _with_loader(incidents, partial(load_details, by=by, links=False, datasets_by_name=True))
