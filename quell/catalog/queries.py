"""Reads of the catalog: the datasets, checks, results, scans and samples a user may see.

Each asks quell.accounts.permissions what the caller may view and writes nothing. The writes are in
quell.catalog.services (and storing a scan in quell.catalog.ingest), which may use these; the words
typed into a search become filters in quell.catalog.search.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from quell.accounts import permissions
from quell.accounts.models import Organization, Responsibility, User, UserGroup
from quell.catalog import visibility
from quell.catalog.models import (
    Check,
    CheckAttributeDefinition,
    CheckResult,
    Dataset,
    DataSource,
    Measurement,
    Outcome,
    Scan,
)
from quell.catalog.search import checks_named, datasets_matching, datasets_named
from quell.lib.errors import Forbidden, NotFound
from quell.lib.seen import checked_for, mark_checked

# --- Datasets -------------------------------------------------------------------------------------


def list_datasets(
    *, by: User, search: str = "", data_source_name: str = "", matching: str = ""
) -> QuerySet[Dataset]:
    """The datasets the caller can view, by data source and name.

    `search` keeps names containing it; `matching` (the dataset pickers' search) keeps datasets whose
    `source/name` contains every word of it. Both ignore case (quell.catalog.search).
    """
    # Each dataset probed for the caller's view permission, in the order listed: a page or a picker
    # stops after its first rows, where building the member's whole list of viewable datasets first
    # took 25-40 ms at 1,000,000 incidents on PostgreSQL (counting them by probes is faster too).
    datasets = permissions.only_viewable(Dataset.objects.all(), by, "pk").select_related("data_source")
    if search:
        datasets = datasets_named(datasets, search)
    datasets = datasets_matching(datasets, matching)
    if data_source_name:
        datasets = datasets.filter(data_source__name=data_source_name)
    return datasets.order_by("data_source__name", "name", "id")


def get_dataset(dataset_id: int, *, by: User) -> Dataset:
    return visibility.visible_dataset(by, dataset_id)


def get_data_source(data_source_id: int, *, by: User) -> DataSource:
    """A data source the caller can view one of the datasets of; NotFound for the others."""
    source = DataSource.objects.filter(
        pk=data_source_id, pk__in=visibility.datasets_with(by).values("data_source_id")
    ).first()
    if source is None:
        raise NotFound(f"Data source {data_source_id} not found.")
    return source


# --- Responsibilities -----------------------------------------------------------------------------


def list_responsibilities(dataset_id: int, *, by: User) -> list[Responsibility]:
    dataset = visibility.visible_dataset(by, dataset_id)
    permissions.require(by, dataset, permissions.MANAGE_PERMISSIONS, "see its responsibilities")
    return list(dataset.responsibilities.select_related("user", "group", "role").order_by("id"))


# --- Checks and results ---------------------------------------------------------------------------


def list_checks(
    *,
    by: User,
    dataset_id: int | None = None,
    outcomes: list[str] | None = None,
    search: str = "",
) -> QuerySet[Check]:
    """The checks the caller can view, by dataset and name.

    `outcomes` keeps checks whose latest outcome is one of them; `search` keeps checks whose name
    contains every word of it (ignoring case; quell.catalog.search).
    """
    checks = Check.objects.filter(dataset__in=visibility.datasets_with(by)).select_related(
        "dataset__data_source"
    )
    if dataset_id is not None:
        checks = checks.filter(dataset_id=dataset_id)
    if outcomes:
        checks = checks.filter(last_outcome__in=outcomes)
    checks = checks_named(checks, search)
    return checks.order_by("dataset_id", "name", "id")


def get_check(check_id: int, *, by: User) -> Check:
    check = list_checks(by=by).filter(pk=check_id).first()
    if check is None:
        raise NotFound(f"Check {check_id} not found.")
    return mark_checked(check, by)


def list_check_results(
    check: Check | int, *, by: User, outcomes: list[str] | None = None
) -> QuerySet[CheckResult]:
    """A check's results, newest first. `check` may be one get_check fetched for `by` (see quell.lib.seen)."""
    if not (isinstance(check, Check) and checked_for(check, by)):
        check = get_check(check.pk if isinstance(check, Check) else check, by=by)
    # The reverse manager gives each result this same `check` as its check_ref, with no join (a join
    # built a Check, JSON fields parsed, for each of a year's 366 results).
    results = check.results.select_related("dataset")
    if outcomes:
        results = results.filter(outcome__in=outcomes)
    return results.order_by("-data_timestamp", "-id")


def visible_check_results(*, by: User) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(dataset__in=visibility.datasets_with(by))


def recent_results_of_checks(check_ids: list[int], *, by: User, per_check: int) -> QuerySet[CheckResult, Any]:
    """The newest `per_check` results of each of these checks that the caller can view, in one query
    (the incident page's small charts). Rows of id, check_ref_id, data_timestamp, outcome, value and
    the diagnostics' `fail` and `warn` thresholds (not the whole diagnostics, which may hold samples)."""
    # One LIMITed subquery per check, each a short walk of result_check_newest: a window over the
    # checks' whole history would number every result they ever had (years of hourly scans) to keep 30.
    newest = Q(pk__in=[])
    for check_id in check_ids:
        newest |= Q(
            pk__in=CheckResult.objects.filter(check_ref_id=check_id)
            .order_by("-data_timestamp", "-id")
            .values("pk")[:per_check]
        )
    return (
        visible_check_results(by=by)
        .filter(newest)
        .values(
            "id",
            "check_ref_id",
            "data_timestamp",
            "outcome",
            "value",
            "diagnostics__fail",
            "diagnostics__warn",
        )
    )


def get_check_result(result_id: int, *, by: User) -> CheckResult:
    result = (
        visible_check_results(by=by)
        .select_related("check_ref", "dataset__data_source", "scan")
        .filter(pk=result_id)
        .first()
    )
    if result is None:
        raise NotFound(f"Check result {result_id} not found.")
    return result


# --- History (Soda's change-over-time and anomaly checks ask for it) ------------------------------

# The most values one history query returns per identity, whatever the client asks for.
HISTORY_MAX_PER_IDENTITY = 1000


def _visible_measurements(by: User) -> QuerySet[Measurement]:
    if not by.is_active:
        return Measurement.objects.none()
    if by.is_admin:
        return Measurement.objects.all()
    # A metric no check of the scan refers to may belong to no dataset; its uploader may still read it.
    return Measurement.objects.filter(
        Q(dataset__in=permissions.dataset_ids_with(by)) | Q(dataset__isnull=True, scan__created_by=by)
    )


def historic_measurements(
    identities: list[str],
    *,
    by: User,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[Measurement]:
    """Stored values of these metrics that the caller may see, newest first, at most `limit` per identity."""
    per_identity = min(limit or HISTORY_MAX_PER_IDENTITY, HISTORY_MAX_PER_IDENTITY)
    rows = _visible_measurements(by).filter(identity__in=identities)
    if since is not None:
        rows = rows.filter(data_timestamp__gte=since)
    if until is not None:
        rows = rows.filter(data_timestamp__lte=until)
    rows = rows.annotate(
        position=Window(
            RowNumber(), partition_by=[F("identity")], order_by=[F("data_timestamp").desc(), F("id").desc()]
        )
    ).filter(position__lte=per_identity)
    return list(rows.order_by("-data_timestamp", "-id"))


def historic_check_results(
    identities: list[str],
    *,
    by: User,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[CheckResult]:
    """Results of the checks with these identities that the caller may see, newest first."""
    per_identity = min(limit or HISTORY_MAX_PER_IDENTITY, HISTORY_MAX_PER_IDENTITY)
    rows = visible_check_results(by=by).filter(check_ref__identity__in=identities)
    if since is not None:
        rows = rows.filter(data_timestamp__gte=since)
    if until is not None:
        rows = rows.filter(data_timestamp__lte=until)
    rows = rows.annotate(
        position=Window(
            RowNumber(),
            partition_by=[F("check_ref__identity")],
            order_by=[F("data_timestamp").desc(), F("id").desc()],
        )
    ).filter(position__lte=per_identity)
    return list(rows.select_related("check_ref", "dataset__data_source").order_by("-data_timestamp", "-id"))


# --- Scans ----------------------------------------------------------------------------------------


def visible_scans(by: User) -> QuerySet[Scan]:
    """Scans that reported on a dataset the caller can view, and those the caller pushed."""
    if not by.is_active:
        return Scan.objects.none()
    if by.is_admin:
        return Scan.objects.all()
    on_visible = Scan.datasets.through.objects.filter(
        scan_id=OuterRef("pk"), dataset_id__in=permissions.dataset_ids_with(by)
    )
    return Scan.objects.filter(Q(Exists(on_visible)) | Q(created_by=by))


def list_scans(
    *, by: User, data_source_id: int | None = None, dataset_id: int | None = None
) -> QuerySet[Scan]:
    """Scans newest first, for one data source or one dataset the caller can view, or all they can see."""
    scans = visible_scans(by)
    if dataset_id is not None:
        visibility.visible_dataset(by, dataset_id)
        scans = scans.filter(
            Exists(Scan.datasets.through.objects.filter(scan_id=OuterRef("pk"), dataset_id=dataset_id))
        )
    if data_source_id is not None:
        if not visibility.datasets_with(by).filter(data_source_id=data_source_id).exists():
            raise NotFound(f"Data source {data_source_id} not found.")
        scans = scans.filter(
            Exists(
                Scan.datasets.through.objects.filter(
                    scan_id=OuterRef("pk"), dataset__data_source_id=data_source_id
                )
            )
        )
    return scans.select_related("data_source", "created_by").order_by("-data_timestamp", "-id")


def with_scan_details(scans: QuerySet[Scan], *, by: User) -> QuerySet[Scan]:
    """Scans with what a list shows of each, in a fixed number of queries however many there are.

    Each scan gets `visible_datasets` (the datasets it reported on that the caller can view) and
    counts of its results on those datasets: `passes`, `warns`, `fails`, `excluded`, `unevaluated`;
    show the scan's `visible_state`, `has_visible_failures` and `has_visible_warnings` (computed from
    these counts), never its stored state and flags, which cover datasets the caller may not view.
    The counts are correlated subqueries, so a page of scans costs the same however long the history.
    """
    visible = visibility.datasets_with(by)

    def count(outcome: str) -> Coalesce:
        rows = CheckResult.objects.filter(scan=OuterRef("pk"), outcome=outcome, dataset__in=visible)
        grouped = rows.order_by().values("scan").annotate(n=Count("*")).values("n")
        return Coalesce(Subquery(grouped, output_field=IntegerField()), Value(0))

    return scans.prefetch_related(
        Prefetch(
            "datasets",
            queryset=visible.select_related("data_source").order_by("name", "id"),
            to_attr="visible_datasets",
        )
    ).annotate(
        passes=count(Outcome.PASS),
        warns=count(Outcome.WARN),
        fails=count(Outcome.FAIL),
        excluded=count(Outcome.EXCLUDED),
        unevaluated=count(Outcome.UNEVALUATED),
    )


def get_scan(scan_id: int, *, by: User) -> Scan:
    scan = visible_scans(by).select_related("data_source", "created_by").filter(pk=scan_id).first()
    if scan is None:
        raise NotFound(f"Scan {scan_id} not found.")
    return scan


def scan_results(scan_id: int, *, by: User) -> QuerySet[CheckResult]:
    """A scan's results on datasets the caller can view, grouped by dataset then check."""
    scan = get_scan(scan_id, by=by)
    return (
        visible_check_results(by=by)
        .filter(scan=scan)
        .select_related("check_ref", "dataset__data_source")
        .order_by("dataset__name", "check_ref__name", "id")
    )


def can_read_scan_logs(scan: Scan, by: User) -> bool:
    # Logs name every table and check of the scan, so they are for those who can see all of them.
    if by.is_admin or scan.created_by_id == by.pk:
        return True
    dataset_ids = set(scan.datasets.values_list("id", flat=True))
    return bool(dataset_ids) and not (
        dataset_ids - set(visibility.datasets_with(by).values_list("id", flat=True))
    )


def scan_logs(scan_id: int, *, by: User) -> list[dict[str, Any]]:
    """The scan's log lines as the client sent them (`level`, `message`, `timestamp`, ...)."""
    scan = get_scan(scan_id, by=by)
    if not can_read_scan_logs(scan, by):
        raise Forbidden("The scan's logs cover datasets you cannot view.")
    return [line for line in scan.logs if isinstance(line, dict)]


# --- Failed-row samples ---------------------------------------------------------------------------


@dataclass
class FailedRows:
    """A failed-rows sample ready to show: column descriptions and the stored rows."""

    file_id: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    total_row_count: int | None
    stored_row_count: int
    truncated: bool


def samples_disabled() -> bool:
    return not Organization.get().collect_failed_rows


def can_view_failed_rows(result: CheckResult, by: User) -> bool:
    return permissions.VIEW_FAILED_ROWS in permissions.permissions_on(by, result.dataset_id)


def failed_rows(result_id: int, *, by: User) -> list[FailedRows]:
    """The failed-row samples of a check result, for callers with "Access failed row samples"."""
    result = get_check_result(result_id, by=by)
    permissions.require(by, result.dataset, permissions.VIEW_FAILED_ROWS, "see the failed rows of its checks")
    return [
        FailedRows(
            file_id=sample.file_id,
            columns=[c for c in sample.columns if isinstance(c, dict)],
            # Every line went through parse_json before it was stored.
            rows=[json.loads(line) for line in sample.content.splitlines() if line.strip()],  # noqa: TID251
            total_row_count=sample.total_row_count,
            stored_row_count=sample.stored_row_count,
            truncated=sample.truncated,
        )
        for sample in result.failed_rows_samples.order_by("id")
    ]


# --- Check attributes -----------------------------------------------------------------------------


def list_check_attribute_definitions(*, by: User) -> QuerySet[CheckAttributeDefinition]:
    # Everyone who writes checks needs to know which attributes exist; only admins define them.
    if not by.is_active:
        return CheckAttributeDefinition.objects.none()
    return CheckAttributeDefinition.objects.order_by("name", "id")


def role_candidates(dataset_id: int, *, by: User) -> tuple[QuerySet[UserGroup], QuerySet[User]]:
    """The groups and the active users holding no role on the dataset yet: whom it can give a role to.

    Only for those who may manage its responsibilities, as `list_responsibilities` checks: who is
    left out tells who holds a role. Both are unevaluated and ordered (Everyone first, then groups by
    name; people by name), so a picker can take a bounded slice; the holders are excluded in SQL.
    """
    dataset = visibility.visible_dataset(by, dataset_id)
    permissions.require(by, dataset, permissions.MANAGE_PERMISSIONS, "see its responsibilities")
    holders = Responsibility.objects.filter(dataset_id=dataset.pk)
    groups = UserGroup.objects.filter(~Exists(holders.filter(group=OuterRef("pk"))))
    people = User.objects.filter(
        ~Exists(holders.filter(user=OuterRef("pk"))), is_active=True, is_system=False
    )
    return groups.order_by("-is_everyone", "name", "id"), people.order_by("name", "email", "id")
