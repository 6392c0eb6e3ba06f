"""Reading incidents: what a caller can see, lists and their counts, single incidents, timelines,
the pickers' choices, and the open incidents of results and checks.

Nothing here writes. The writes (quell.incidents.services) may use these reads, never the
reverse, so reading code cannot reach a write. Parts that stand on their own are in modules of
their own: the details an incident's representation shows (quell.incidents.details), how a title
search becomes SQL (quell.incidents.search), and sorting and paging lists (quell.incidents.paging).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When

from quell.accounts import permissions
from quell.accounts.models import Responsibility, User, UserGroup
from quell.catalog import visibility
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult, Dataset
from quell.incidents import search as title_search
from quell.incidents import tallies
from quell.incidents.details import with_details
from quell.incidents.models import (
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentTally,
    ResolutionReason,
    Severity,
    Status,
    TimelineEvent,
)
from quell.lib.errors import Invalid, NotFound
from quell.lib.seen import checked_for, mark_checked


@dataclass
class IncidentFilters:
    statuses: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    resolution_reasons: list[str] = field(default_factory=list)
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
    return Incident.objects.filter(_on_a_dataset_with(by, permissions.VIEW))


def _on_a_dataset_with(by: User, permission: str, incident: str = "pk") -> Exists:
    """A per-row condition for an active member: the incident (`incident` names its id column) is
    linked to a dataset on which they hold `permission`, which, as in permissions.permissions_on, counts
    only with View dataset on that dataset too."""
    pairs = IncidentDataset.objects.filter(incident=OuterRef(incident)).filter(
        permissions.holds_on(by, OuterRef("dataset_id"), permissions.VIEW)
    )
    if permission != permissions.VIEW:
        pairs = pairs.filter(permissions.holds_on(by, OuterRef("dataset_id"), permission))
    return Exists(pairs)


def find_incidents(filters: IncidentFilters, *, by: User) -> tuple[QuerySet[Incident], StatusCounts]:
    """The incidents the filters choose, and how many match per status (whatever filters.statuses
    says, so each count tells what choosing that status gives): a list page's two halves, sharing
    one read of the full-text index for a title search."""
    search = title_search.TitleSearch.read(filters.search)
    return list_incidents(filters, by=by, search=search), status_counts(filters, by=by, search=search)


def list_incidents(
    filters: IncidentFilters, *, by: User, search: title_search.TitleSearch | None = None
) -> QuerySet[Incident]:
    """The incidents the filters choose, newest first. `search`: filters.search already read."""
    incidents = visible_incidents(by)
    check_choices("status", filters.statuses, Status.values)
    check_choices("severity", filters.severities, Severity.values)
    check_choices("resolution_reason", filters.resolution_reasons, ResolutionReason.values)
    if filters.statuses:
        incidents = incidents.filter(status__in=filters.statuses)
    if filters.severities:
        incidents = incidents.filter(severity__in=filters.severities)
    if filters.resolution_reasons:
        incidents = incidents.filter(resolution_reason__in=filters.resolution_reasons)
    if filters.lead_ids:
        incidents = incidents.filter(lead_id__in=filters.lead_ids)
    if filters.reporter_ids:
        incidents = incidents.filter(reporter_id__in=filters.reporter_ids)
    if filters.incident_ids:
        incidents = incidents.filter(id__in=filters.incident_ids)
    if filters.dataset_ids:
        # Only datasets the caller can view: filtering by a private one must not reveal its incidents.
        dataset_ids = visibility.viewable_among(by, filters.dataset_ids)
        # `id IN (incidents of these datasets)`, not a correlated EXISTS: the planner can then start
        # from the few incidents of the datasets instead of probing every incident newest first
        # (0.4 s on SQLite at 1,000,000 incidents for a dataset with a hundred).
        incidents = incidents.filter(
            pk__in=IncidentDataset.objects.filter(dataset_id__in=dataset_ids).values("incident_id")
        )
    if filters.search.strip():
        incidents = incidents.filter(title_search.list_filter(filters.search, search))
    if filters.created_from:
        incidents = incidents.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        incidents = incidents.filter(created_at__lt=filters.created_to)
    return incidents.order_by("-created_at", "-id")


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
        permissions.MANAGE_INCIDENTS in perms
        for perms in permissions.permissions_on_many(by, dataset_ids).values()
    )


def timeline(incident: Incident | int, *, by: User) -> list[TimelineEvent]:
    incident = checked_incident(incident, by=by)
    visible_result_ids = {link.check_result_id for link in incident.visible_links}  # type: ignore[attr-defined]
    visible_dataset_ids = {dataset.pk for dataset in incident.visible_datasets}  # type: ignore[attr-defined]
    events = incident.timeline.select_related(
        "actor", "check_result__check_ref", "check_result__dataset"
    ).order_by("created_at", "id")
    # An attached result from a dataset the caller cannot view is not theirs to see, nor its event;
    # nor is a pass of a check of such a dataset (passes are not linked: their dataset says).
    return [
        event
        for event in events
        if (event.kind != EventKind.RESULT_ATTACHED or event.check_result_id in visible_result_ids)
        and (
            event.kind != EventKind.CHECK_PASSED
            or event.check_result is None
            or event.check_result.dataset_id in visible_dataset_ids
        )
    ]


# Above this many, a count that the tallies cannot answer stops counting and says "at least".
COUNT_CAP = 10_000


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
    return tallies.visible_to_member(permissions.dataset_ids_held_in_person(by))


def status_counts(
    filters: IncidentFilters, *, by: User, search: title_search.TitleSearch | None = None
) -> StatusCounts:
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
        filters.resolution_reasons
        or filters.lead_ids
        or filters.reporter_ids
        or filters.incident_ids
        or filters.search.strip()
        or filters.created_from
        or filters.created_to
    )
    if not others:
        if filters.dataset_ids:
            # Datasets the caller can view only; every incident of a visible dataset is visible.
            chosen = visibility.viewable_among(by, filters.dataset_ids)
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
        cap = title_search.SEARCH_COUNT_CAP
        among, count_matches = title_search.first_matches(filters.search, cap + 1, search)
        rest = IncidentFilters(**{**filters.__dict__, "statuses": [], "search": ""})
        counted = dict(
            list_incidents(rest, by=by).filter(among).order_by().values_list("status").annotate(n=Count("id"))
        )
        if by.is_admin and rest == IncidentFilters():
            # Nothing else filters the matches: the counts add up to how many there were.
            capped = sum(counted.values()) > cap
        else:
            capped = count_matches() > cap
        if not capped:
            return StatusCounts(counted)
        # Among SEARCH_COUNT_CAP + 1 matches the counts can add up to one more than the cap; "at
        # least 1,001" claims no more than "at least 1,000" and reads worse.
        return StatusCounts(
            {status: min(n, cap) for status, n in counted.items()},
            set(Status.values),
            most=cap,
        )
    counts: dict[str, int] = {}
    at_least: set[str] = set()
    unfiltered = IncidentFilters(**{**filters.__dict__, "statuses": []})
    matching = list_incidents(unfiltered, by=by).order_by()
    for status in Status.values:
        if filters.resolution_reasons and status != Status.RESOLVED:
            # Only a resolved incident has a reason (services._settle_reason): nothing to count,
            # and counting would walk every incident of the reasons through their index.
            continue
        n = matching.filter(status=status).values("pk")[: COUNT_CAP + 1].count()
        if n > COUNT_CAP:
            n = COUNT_CAP
            at_least.add(status)
        if n:
            counts[status] = n
    return StatusCounts(counts, at_least)


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
    lead an incident of them (see services._lead), and who may change it.

    Only datasets the caller can view count, so the list reveals nothing about private ones. `search`
    keeps those whose name or email contains every word. A role counts when it grants View dataset
    too (every role a service makes does; one without it grants nothing).
    """
    ids = visibility.viewable_among(by, dataset_ids)
    if not ids:
        return User.objects.none()
    users = people_matching(
        User.objects.filter(is_active=True, is_system=False).order_by("name", "email", "id"), search
    )
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
    return permissions.MANAGE_INCIDENTS in permissions.permissions_on(by, dataset.pk)


def require_manage_incidents_on(dataset: Dataset, *, by: User) -> None:
    permissions.require(by, dataset, permissions.MANAGE_INCIDENTS, "create incidents from its check results")


def attachable_results(
    incident: Incident | int, *, by: User, search: str = "", limit: int = 50
) -> list[CheckResult]:
    """Warn and fail results the caller could include in the incident, newest first.

    They come from the incident's datasets on which the caller holds Manage incidents, and are not
    linked yet. `search` keeps results whose check name contains every word.
    """
    incident = checked_incident(incident, by=by)
    dataset_ids = (
        visibility.datasets_with(by, permissions.MANAGE_INCIDENTS).filter(incidents=incident).values("pk")
    )
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
        permissions.only_viewable(
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
    links = permissions.only_viewable(links, by, "check_result__dataset_id")
    if not by.is_admin:
        links = links.filter(_on_a_dataset_with(by, permissions.VIEW, "incident_id"))
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

    `check` is one catalog.queries.get_check fetched for `by` (quell.lib.seen), or one on a
    dataset they can view; otherwise NotFound.
    """
    if not checked_for(check, by) and permissions.VIEW not in permissions.permissions_on(
        by, check.dataset_id
    ):
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
        Value(True) if by.is_admin else _on_a_dataset_with(by, permissions.MANAGE_INCIDENTS, "incident_id")
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
        permissions.only_viewable(unattended, by, "pk")
        .select_related("data_source")
        .order_by("-failing_check_count", "data_source__name", "name", "id")
    )


def checks_needing_attention_first(checks: QuerySet[Check]) -> QuerySet[Check]:
    """These checks (quell.catalog.queries.list_checks) with first those that warn or fail now and
    have no result in an open incident, each annotated `needs_attention`; then by data source,
    dataset and name. Here, not in the catalog: the catalog does not know about incidents.
    """
    in_open_incident = CheckResult.objects.filter(
        check_ref=OuterRef("pk"), incident_links__incident__status__in=OPEN_STATUSES
    )
    # The CASE probes only the checks that warn or fail (a few), each through its results' index
    # (result_check_newest) and the links' index on check_result, not every visible check.
    needs_attention = Case(
        When(last_outcome__in=FAILING_OUTCOMES, then=~Exists(in_open_incident)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return checks.annotate(needs_attention=needs_attention).order_by(
        "-needs_attention", "dataset__data_source__name", "dataset__name", "name", "id"
    )


def check_choices(name: str, values: list[str], allowed: list[str]) -> None:
    """Invalid unless every value is one of `allowed`: a list's filters, and the writes' fields."""
    for value in values:
        if value not in allowed:
            raise Invalid(
                f"{name} must be one of {', '.join(allowed)}, not {value!r}.",
                code=f"invalid_{name}",
                field=name,
            )
