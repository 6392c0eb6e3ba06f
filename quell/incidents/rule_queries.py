"""Reading incident rules: the list a person sees, one rule, who may change which, and the enabled
rules the engine (quell.automation) tries on ingest. quell.incidents.rules writes them.

Who sees what: admins see every rule; any other active user sees the rules for every dataset
(org-wide) and the rules with at least one dataset they can view, each showing only those of its
datasets (and data sources) they can view. Who may change a rule: an admin, or whoever holds
Configure dataset on every one of its datasets; a rule for every dataset is an admin's alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.db.models import Count, Prefetch, Q, QuerySet

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog import visibility
from quell.catalog.models import Dataset, DataSource
from quell.incidents.models import OPEN_STATUSES, IncidentRule
from quell.incidents.queries import visible_incidents
from quell.lib.errors import Forbidden, NotFound


@dataclass(frozen=True)
class ShownRule:
    """A rule as one reader sees it (the API's representation and the settings page's row)."""

    rule: IncidentRule
    # Its index in the order rules are tried (from 0), which PATCH {"position": n} takes.
    position: int
    # Its datasets and data sources the reader can view, by name.
    datasets: list[Dataset]
    data_sources: list[DataSource]
    # Open incidents the rule opened, of those the reader can see.
    open_incidents: int
    # Whether the reader may change, move or delete it.
    changeable: bool


def _ordered() -> QuerySet[IncidentRule]:
    return (
        IncidentRule.objects.order_by("position", "id")
        .select_related("lead", "created_by")
        .prefetch_related(
            Prefetch(
                "datasets",
                queryset=Dataset.objects.select_related("data_source").order_by("data_source__name", "name"),
            ),
            Prefetch("data_sources", queryset=DataSource.objects.order_by("name")),
        )
    )


def list_rules(*, by: User) -> list[ShownRule]:
    """The rules `by` may see, in the order they are tried. A handful of statements however many
    rules there are (an installation has tens: every ingest tries each enabled one)."""
    if not by.is_active:
        return []
    rules = list(_ordered())
    return _shown(rules, by, positions={rule.pk: index for index, rule in enumerate(rules)})


def get_rule(rule_id: int, *, by: User) -> ShownRule:
    """One rule as `by` sees it; NotFound when it does not exist or they may not see it."""
    rule = _ordered().filter(pk=rule_id).first() if by.is_active else None
    if rule is not None:
        position = IncidentRule.objects.filter(
            Q(position__lt=rule.position) | Q(position=rule.position, pk__lt=rule.pk)
        ).count()
        shown = _shown([rule], by, positions={rule.pk: position})
        if shown:
            return shown[0]
    raise NotFound(f"Incident rule {rule_id} not found.")


class EnabledRule(NamedTuple):
    """An enabled rule with the ids of the datasets and data sources it is scoped to."""

    rule: IncidentRule
    dataset_ids: frozenset[int]
    data_source_ids: frozenset[int]


def enabled_rules() -> list[EnabledRule]:
    """Every enabled rule in the order they are tried, with its lead and the ids of its datasets
    and data sources: what the engine matches each result of an ingest against, in three
    statements (ids, not the datasets' rows). No caller: Quell runs them.

    A rule with `dataset_scoped` and no datasets left (they were all deleted) matches nothing.
    """
    rules = list(IncidentRule.objects.filter(enabled=True).order_by("position", "id").select_related("lead"))
    if not rules:
        return []
    ids = [rule.pk for rule in rules]
    datasets: defaultdict[int, set[int]] = defaultdict(set)
    for rule_id, dataset_id in IncidentRule.datasets.through.objects.filter(
        incidentrule_id__in=ids
    ).values_list("incidentrule_id", "dataset_id"):
        datasets[rule_id].add(dataset_id)
    sources: defaultdict[int, set[int]] = defaultdict(set)
    for rule_id, source_id in IncidentRule.data_sources.through.objects.filter(
        incidentrule_id__in=ids
    ).values_list("incidentrule_id", "datasource_id"):
        sources[rule_id].add(source_id)
    return [EnabledRule(rule, frozenset(datasets[rule.pk]), frozenset(sources[rule.pk])) for rule in rules]


def _shown(rules: list[IncidentRule], by: User, *, positions: dict[int, int]) -> list[ShownRule]:
    dataset_ids = {dataset.pk for rule in rules for dataset in rule.datasets.all()}
    held = permissions.permissions_on_many(by, dataset_ids) if dataset_ids else {}
    visible = [rule for rule in rules if _may_see(rule, by, held)]
    source_ids = {source.pk for rule in visible for source in rule.data_sources.all()}
    sources_seen = _viewable_data_sources(by, source_ids)
    counts = _open_incident_counts([rule.pk for rule in visible], by)
    return [
        ShownRule(
            rule=rule,
            position=positions[rule.pk],
            datasets=[d for d in rule.datasets.all() if permissions.VIEW in held.get(d.pk, ())],
            data_sources=[s for s in rule.data_sources.all() if s.pk in sources_seen],
            open_incidents=counts.get(rule.pk, 0),
            changeable=_may_change(rule, by, held),
        )
        for rule in visible
    ]


def _may_see(rule: IncidentRule, by: User, held: dict[int, frozenset[str]]) -> bool:
    if by.is_admin or not rule.dataset_scoped:
        return True
    return any(permissions.VIEW in held.get(dataset.pk, ()) for dataset in rule.datasets.all())


def _may_change(rule: IncidentRule, by: User, held: dict[int, frozenset[str]]) -> bool:
    if by.is_admin:
        return True
    datasets = list(rule.datasets.all())
    if not rule.dataset_scoped or not datasets:
        return False
    return all(permissions.CONFIGURE_DATASET in held.get(dataset.pk, ()) for dataset in datasets)


def _viewable_data_sources(by: User, source_ids: set[int]) -> set[int]:
    """Of these data sources, those holding a dataset `by` can view (all of them for an admin)."""
    if not source_ids:
        return set()
    sources = DataSource.objects.filter(pk__in=source_ids)
    if not by.is_admin:
        sources = sources.filter(pk__in=visibility.datasets_with(by).values("data_source_id"))
    return set(sources.values_list("pk", flat=True))


def _open_incident_counts(rule_ids: list[int], by: User) -> dict[int, int]:
    if not rule_ids:
        return {}
    rows = (
        visible_incidents(by)
        .filter(rule_id__in=rule_ids, status__in=OPEN_STATUSES)
        .order_by()
        .values_list("rule_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


# --- Who may make and change rules ------------------------------------------------------------------


def may_make_rules(by: User) -> bool:
    """Whether `by` may make any rule at all: an admin, or someone who configures some dataset.
    What opens the settings page of rules."""
    return permissions.holds_anywhere(by, permissions.CONFIGURE_DATASET)


def require_rule_maker(by: User) -> None:
    if not may_make_rules(by):
        raise Forbidden(
            "Incident rules are made by admins, and by people with the Configure dataset permission "
            "for the datasets they configure."
        )


def configurable_datasets(*, by: User) -> QuerySet[Dataset]:
    """The datasets `by` may make a rule for (every dataset for an admin), by data source and name."""
    return (
        visibility.datasets_with(by, permissions.CONFIGURE_DATASET)
        .select_related("data_source")
        .order_by("data_source__name", "name", "id")
    )


def datasets_matching(datasets: QuerySet[Dataset], search: str) -> QuerySet[Dataset]:
    """The datasets whose name or data source's name contains every word of `search`."""
    for word in search.split()[:10]:
        datasets = datasets.filter(Q(name__icontains=word) | Q(data_source__name__icontains=word))
    return datasets


def visible_data_sources(*, by: User) -> QuerySet[DataSource]:
    """The data sources a rule of `by` may name: those holding a dataset they can view (all for an admin)."""
    if not by.is_active:
        return DataSource.objects.none()
    sources = DataSource.objects.order_by("name", "id")
    if by.is_admin:
        return sources
    return sources.filter(pk__in=visibility.datasets_with(by).values("data_source_id"))


def require_scope(by: User, datasets: Sequence[Dataset], *, action: str) -> None:
    """Forbidden unless `by` may have a rule reach exactly these datasets (existing ones, which `by`
    can view): an admin any; anyone else only datasets they each hold Configure dataset on, and
    never every dataset (no datasets)."""
    if by.is_admin:
        return
    if not datasets:
        raise Forbidden(
            f"Only an admin can {action} for every dataset: choose the datasets it is for, among those "
            "you configure."
        )
    permissions.require_on_each(by, datasets, permissions.CONFIGURE_DATASET, action)


def require_changeable(rule: IncidentRule, by: User, *, action: str) -> None:
    """Forbidden unless `by` may change (or move, or delete) this rule as it stands."""
    if by.is_admin:
        return
    if not rule.dataset_scoped:
        raise Forbidden(f"Only an admin can {action}: it is for every dataset.")
    datasets = list(rule.datasets.select_related("data_source"))
    if not datasets:
        raise Forbidden(f"Only an admin can {action}: its datasets were deleted.")
    held = permissions.permissions_on_many(by, {dataset.pk for dataset in datasets})
    lacking = [d for d in datasets if permissions.CONFIGURE_DATASET not in held[d.pk]]
    if not lacking:
        return
    seen = [d for d in lacking if permissions.VIEW in held[d.pk]]
    if seen:
        # The first dataset the caller can see names the refusal, as require_on_each would.
        permissions.require_on_each(by, seen, permissions.CONFIGURE_DATASET, action)
    # Only datasets the caller cannot see are lacking: say so without naming them.
    raise Forbidden(
        f"You cannot {action}: it also reaches datasets you cannot view, and changing it needs the "
        '"Configure dataset" permission on each of its datasets.'
    )


def lead_refusal_datasets(lead: User, dataset_ids: Collection[int]) -> list[int]:
    """Of these datasets, those on which `lead` does not hold Manage incidents (with View dataset)."""
    if not dataset_ids:
        return []
    held = permissions.permissions_on_many(lead, set(dataset_ids))
    return sorted(pk for pk, perms in held.items() if permissions.MANAGE_INCIDENTS not in perms)


def names_of(datasets: Iterable[Dataset]) -> str:
    return ", ".join(str(dataset) for dataset in datasets)
