"""Housekeeping: removing what the organisation's retention settings no longer keep.

Each kind of record has one purge function. They delete in small batches by primary key, one short
transaction per batch, so web requests and ingestion keep writing while housekeeping runs: on
SQLite a transaction holds the database's single write lock, and a pause between batches lets
waiting writers in. Deletes go through Django's collector, which follows every foreign key
(samples of a result, measurements of a scan, attempts of a delivery), so nothing is orphaned.

What is never deleted, whatever the settings:
- check results linked to an incident (the incident's evidence) and the newest result of each check
  (the check's latest outcome);
- failed-row samples of results in an open incident, while it is open;
- deliveries that are not finished, and the events they carry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from quell.accounts.logins import LOGIN_WINDOW
from quell.accounts.models import LoginFailure, Organization, User
from quell.accounts.permissions import require_admin
from quell.catalog.models import CheckResult, FailedRowsSample, Measurement, Scan
from quell.incidents.models import OPEN_STATUSES, IncidentCheckResult
from quell.ingest.models import SodaToken
from quell.integrations.models import UNFINISHED, Delivery, Event
from quell.lib.errors import Invalid
from quell.ops.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)

BATCH_SIZE = 1000
# Between batches on SQLite, so writers queued on the lock get their turn.
SQLITE_PAUSE_SECONDS = 0.05

# Longest retention an admin may set: beyond a century "keep forever" (blank) says what is meant.
MAX_DAYS = 36_500

# Records whose useful life is fixed by Quell itself, not by the organisation.
# django-tasks-db's rows repeat what the delivery log records; a week is enough to debug a worker.
TASK_RESULTS_KEEP = timedelta(days=7)
# Log-in failures stop counting after the throttling window; a few windows are kept for reading.
LOGIN_FAILURES_KEEP = 4 * LOGIN_WINDOW
# A heartbeat is touched every few seconds; one unseen for a day belongs to a process that died.
HEARTBEATS_KEEP = timedelta(days=1)


# --- Retention settings ---------------------------------------------------------------------------

# The API's names of the settings, and the Organization fields that hold them.
RETENTION_FIELDS = {
    "checkResultsDays": "keep_check_results_days",
    "scansDays": "keep_scans_days",
    "failedRowsSamplesDays": "keep_failed_rows_days",
    "deliveryLogDays": "keep_delivery_log_days",
}


def retention_of(org: Organization) -> dict[str, int | None]:
    return {name: getattr(org, attr) for name, attr in RETENTION_FIELDS.items()}


def get_retention(*, by: User) -> dict[str, int | None]:
    """How long records are kept. Every signed-in user may know how long their data lives."""
    return retention_of(Organization.get())


def update_retention(*, by: User, changes: dict[str, int | None]) -> dict[str, int | None]:
    """Change some retention settings, named by their API names; null or 0 keeps records forever.

    All values are checked before any is saved, so a bad one changes nothing.
    """
    require_admin(by, "change how long records are kept")
    cleaned: dict[str, int | None] = {}
    for name, value in changes.items():
        if name not in RETENTION_FIELDS:
            raise Invalid(f"There is no retention setting {name!r}.", field=name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(f"{name} must be a whole number of days, or null to keep forever.", field=name)
        if value is not None and value < 0:
            raise Invalid(f"{name} cannot be negative; use null or 0 to keep forever.", field=name)
        if value is not None and value > MAX_DAYS:
            raise Invalid(
                f"{name} can be at most {MAX_DAYS} days (100 years); use null to keep forever.", field=name
            )
        cleaned[RETENTION_FIELDS[name]] = value or None
    with transaction.atomic():
        org = Organization.get()
        for attr, value in cleaned.items():
            setattr(org, attr, value)
        org.save(update_fields=list(cleaned) or None)
    return retention_of(org)


# --- Batched deletion -----------------------------------------------------------------------------


@dataclass
class Batching:
    """How a purge walks its rows: how many per transaction, and how long to wait between them."""

    size: int = BATCH_SIZE
    pause: float | None = None  # None: SQLITE_PAUSE_SECONDS on SQLite, none on PostgreSQL
    # Transactions committed so far, across every purge of a run.
    transactions: int = 0

    def rest(self) -> None:
        pause = self.pause
        if pause is None:
            pause = SQLITE_PAUSE_SECONDS if connection.vendor == "sqlite" else 0.0
        if pause > 0:
            time.sleep(pause)


def _in_batches(
    candidates: QuerySet[M],
    batching: Batching,
    *,
    action: Callable[[QuerySet[M]], int],
    time_field: str | None = None,
) -> int:
    """Apply `action` to the candidates, a batch of primary keys per transaction; return its total.

    The walk goes by primary key, or by (`time_field`, primary key) oldest first when an index on
    that pair serves the candidates' time filter; either way, rows that were kept are never visited
    twice. The candidates are chosen again inside each transaction, after locking the rows, because
    a row chosen a moment ago may have become worth keeping (a result attached to an incident).
    """
    model = candidates.model
    order = [time_field, "pk"] if time_field else ["pk"]
    done = 0
    cursor: tuple[Any, ...] | None = None
    while True:
        page = candidates.order_by(*order)
        if cursor is not None and time_field:
            # The >= bound lets the index scan start at the cursor; the OR then skips its ties.
            at, pk = cursor
            page = page.filter(**{f"{time_field}__gte": at}).filter(
                Q(**{f"{time_field}__gt": at}) | Q(pk__gt=pk)
            )
        elif cursor is not None:
            page = page.filter(pk__gt=cursor[-1])
        rows = list(page.values_list(*order)[: batching.size])
        if not rows:
            return done
        cursor = tuple(rows[-1])
        ids = [row[-1] for row in rows]
        with transaction.atomic():
            # On PostgreSQL the lock makes a concurrent attach wait for this transaction, or this
            # one wait for it; SQLite's IMMEDIATE transaction already holds the only write lock.
            list(model._default_manager.filter(pk__in=ids).select_for_update().values_list("pk", flat=True))
            done += action(candidates.filter(pk__in=ids))
        batching.transactions += 1
        if len(ids) < batching.size:
            return done
        batching.rest()


def _delete(rows: QuerySet[M]) -> int:
    _, per_model = rows.delete()
    return per_model.get(rows.model._meta.label, 0)


def _purge(candidates: QuerySet[M], batching: Batching, dry_run: bool) -> int:
    if dry_run:
        return candidates.count()
    return _in_batches(candidates, batching, action=_delete)


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if not days else now - timedelta(days=days)


# --- One purge per kind ---------------------------------------------------------------------------


def expired_check_results(cutoff: datetime) -> QuerySet[CheckResult]:
    """Results received before the cutoff, except incident evidence and each check's newest result.

    Walked by (`created_at`, id), which the catalog's `result_created` index serves; "a newer result
    of the same check" uses the check's results-newest-first index.
    """
    evidence = IncidentCheckResult.objects.filter(check_result=OuterRef("pk"))
    newer = CheckResult.objects.filter(
        Q(data_timestamp__gt=OuterRef("data_timestamp"))
        | Q(data_timestamp=OuterRef("data_timestamp"), pk__gt=OuterRef("pk")),
        check_ref=OuterRef("check_ref"),
    )
    return CheckResult.objects.filter(created_at__lt=cutoff).filter(Exists(newer)).exclude(Exists(evidence))


def _delete_results_and_their_measurements(rows: QuerySet[CheckResult]) -> int:
    measurement_ids = {pk for pk in rows.values_list("measurement_id", flat=True) if pk is not None}
    deleted = _delete(rows)
    # A measurement belongs to its scan, but it is kept for the results that evaluated it: once none
    # is left it goes with them. (Measurements no result used go with their scan.)
    if measurement_ids:
        used = CheckResult.objects.filter(measurement=OuterRef("pk"))
        Measurement.objects.filter(pk__in=measurement_ids).exclude(Exists(used)).delete()
    return deleted


def purge_check_results(
    org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False
) -> int:
    """Delete old check results with their failed-row samples and, when unused, their measurements."""
    cutoff = _cutoff(now, org.keep_check_results_days)
    if cutoff is None:
        return 0
    candidates = expired_check_results(cutoff)
    if dry_run:
        return candidates.count()
    return _in_batches(
        candidates, batching, action=_delete_results_and_their_measurements, time_field="created_at"
    )


def purge_scan_logs(org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    """Empty the logs of scans older than the scan window; the scans themselves stay with their results."""
    cutoff = _cutoff(now, org.keep_scans_days)
    if cutoff is None:
        return 0
    candidates = Scan.objects.filter(created_at__lt=cutoff).exclude(logs=[])
    if dry_run:
        return candidates.count()
    return _in_batches(candidates, batching, action=lambda rows: rows.update(logs=[]))


def purge_scans(org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    """Delete scans older than the scan window that no check result refers to any more.

    Their measurements go with them. A scan with results stays as long as they do: it is where they
    came from.
    """
    cutoff = _cutoff(now, org.keep_scans_days)
    if cutoff is None:
        return 0
    has_results = CheckResult.objects.filter(scan=OuterRef("pk"))
    return _purge(Scan.objects.filter(created_at__lt=cutoff).exclude(Exists(has_results)), batching, dry_run)


def purge_failed_rows_samples(
    org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False
) -> int:
    """Delete failed-row samples older than their window, except those of results in an open incident."""
    cutoff = _cutoff(now, org.keep_failed_rows_days)
    if cutoff is None:
        return 0
    in_open_incident = IncidentCheckResult.objects.filter(
        check_result=OuterRef("check_result"), incident__status__in=OPEN_STATUSES
    )
    candidates = FailedRowsSample.objects.filter(created_at__lt=cutoff).exclude(Exists(in_open_incident))
    return _purge(candidates, batching, dry_run)


def purge_deliveries(org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    """Delete finished deliveries (with their attempts) that finished before the delivery-log window."""
    cutoff = _cutoff(now, org.keep_delivery_log_days)
    if cutoff is None:
        return 0
    finished = Delivery.objects.exclude(status__in=UNFINISHED)
    old = finished.filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
    return _purge(old, batching, dry_run)


def purge_events(org: Organization, now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    """Delete events older than the delivery-log window that no delivery carries any more."""
    cutoff = _cutoff(now, org.keep_delivery_log_days)
    if cutoff is None:
        return 0
    carried = Delivery.objects.filter(event=OuterRef("pk"))
    return _purge(Event.objects.filter(created_at__lt=cutoff).exclude(Exists(carried)), batching, dry_run)


def purge_task_results(now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    """Delete django-tasks-db's rows of tasks that finished more than a week ago."""
    finished = DBTaskResult.objects.filter(status__in=["SUCCESSFUL", "FAILED"])
    return _purge(finished.filter(finished_at__lt=now - TASK_RESULTS_KEEP), batching, dry_run)


def purge_soda_tokens(now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    return _purge(SodaToken.objects.filter(expires_at__lt=now), batching, dry_run)


def purge_login_failures(now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    return _purge(LoginFailure.objects.filter(at__lt=now - LOGIN_FAILURES_KEEP), batching, dry_run)


def purge_heartbeats(now: datetime, batching: Batching, *, dry_run: bool = False) -> int:
    return _purge(WorkerHeartbeat.objects.filter(seen_at__lt=now - HEARTBEATS_KEEP), batching, dry_run)


# --- A whole run ----------------------------------------------------------------------------------


@dataclass
class HousekeepingReport:
    dry_run: bool
    # What was removed (or would be), by kind, in the order the purges ran.
    counts: dict[str, int] = field(default_factory=dict)
    transactions: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        return [f"{kind}: {verb} {count}" for kind, count in self.counts.items()]


def run_housekeeping(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    pause: float | None = None,
) -> HousekeepingReport:
    """Apply the retention settings once. Safe to run at any time and in any process.

    Results go before scans, so that scans emptied by the result purge go in the same run; deliveries
    go before events for the same reason. A dry run counts what the purges would take first, so it
    does not see what a real run's earlier purges would make purgeable.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    org = Organization.get()
    batching = Batching(size=batch_size, pause=pause)
    report = HousekeepingReport(dry_run=dry_run)
    by_org: list[tuple[str, Callable[..., int]]] = [
        ("check results", purge_check_results),
        ("failed-row samples", purge_failed_rows_samples),
        ("scan logs emptied", purge_scan_logs),
        ("scans", purge_scans),
        ("deliveries", purge_deliveries),
        ("events", purge_events),
    ]
    for kind, purge in by_org:
        report.counts[kind] = purge(org, now, batching, dry_run=dry_run)
    fixed: list[tuple[str, Callable[..., int]]] = [
        ("finished task rows", purge_task_results),
        ("expired Soda tokens", purge_soda_tokens),
        ("log-in failures", purge_login_failures),
        ("stale worker heartbeats", purge_heartbeats),
    ]
    for kind, purge in fixed:
        report.counts[kind] = purge(now, batching, dry_run=dry_run)
    report.transactions = batching.transactions
    if report.total and not dry_run:
        logger.info("Housekeeping: %s", "; ".join(line for line in report.lines() if not line.endswith(" 0")))
    return report


def periodic_housekeeping() -> HousekeepingReport:
    """The periodic job `quell worker` runs (see quell.ops.apps)."""
    return run_housekeeping()
