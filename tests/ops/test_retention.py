"""Housekeeping deletes what the retention settings no longer keep, in batches, and nothing else."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from quell.accounts.models import ApiKey, LoginFailure, Organization, User
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult, FailedRowsSample, Measurement, Scan
from quell.incidents import services as incidents
from quell.incidents.models import Incident, Status
from quell.ingest.models import SodaToken
from quell.integrations.models import Delivery, DeliveryAttempt, Event, Integration
from quell.lib.periodic import Job, registered
from quell.ops import periodic
from quell.ops.housekeeping import run_housekeeping
from quell.ops.models import PeriodicJob, WorkerHeartbeat
from tests.conftest import T0, World

NOW = timezone.now()
OLD = NOW - dt.timedelta(days=100)


def keep(**days: int | None) -> None:
    Organization.objects.filter(pk=Organization.get().pk).update(**days)


def results_of(by: User, check: str, *outcomes: str, dataset: str = "orders") -> list[CheckResult]:
    """One scan per outcome for one check, each a day after the last; returned oldest first."""
    stored = []
    for n, outcome in enumerate(outcomes):
        _, results = catalog_ingest.ingest_scan(
            catalog_ingest.ScanInput(
                data_timestamp=T0 + dt.timedelta(days=n),
                results=[
                    catalog_ingest.ResultInput(
                        data_source="warehouse",
                        dataset=dataset,
                        check=catalog_ingest.CheckInput(name=check),
                        outcome=outcome,
                        value=n,
                    )
                ],
            ),
            by=by,
        )
        stored.extend(results)
    return stored


def received_long_ago(*rows: CheckResult) -> None:
    CheckResult.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=OLD)


def sample_of(result: CheckResult | None, *, file_id: str, old: bool = True) -> FailedRowsSample:
    return FailedRowsSample.objects.create(
        file_id=file_id, check_result=result, content="[1]\n", created_at=OLD if old else NOW
    )


def exists(row: object) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()  # type: ignore[attr-defined]


# --- Check results --------------------------------------------------------------------------------


def test_results_older_than_the_window_go_and_newer_ones_stay(world: World) -> None:
    keep(keep_check_results_days=30)
    first, second, third, newest = results_of(world.admin, "freshness < 1d", "fail", "pass", "warn", "pass")
    received_long_ago(first, second, newest)

    report = run_housekeeping(now=NOW, pause=0)

    assert not exists(first)
    assert not exists(second)
    assert exists(third)  # received just now
    assert exists(newest)
    assert report.counts["check results"] == 2


def test_the_newest_result_of_each_check_stays_however_old(world: World) -> None:
    keep(keep_check_results_days=30)
    (only,) = results_of(world.admin, "row_count > 10", "fail", dataset="customers")
    received_long_ago(only, world.orders_pass)

    run_housekeeping(now=NOW, pause=0)

    assert exists(only)
    assert exists(world.orders_pass)
    assert CheckResult.objects.get(pk=only.pk).check_ref.last_outcome == "fail"


def test_results_that_are_an_incidents_evidence_stay_however_old(world: World) -> None:
    keep(keep_check_results_days=30)
    evidence, attached_later, plain, _ = results_of(
        world.admin, "orders fresh", "fail", "fail", "fail", "pass"
    )
    incident = incidents.create_incident(
        by=world.manager, title="Stale orders", severity="major", check_result_ids=[evidence.pk]
    )
    incidents.attach_check_results(incident.pk, [attached_later.pk], by=world.manager)
    received_long_ago(evidence, attached_later, plain)

    run_housekeeping(now=NOW, pause=0)

    assert exists(evidence)
    assert exists(attached_later)
    assert not exists(plain)
    assert set(incident.check_results.values_list("pk", flat=True)) == {evidence.pk, attached_later.pk}


def test_a_deleted_result_takes_its_samples_and_its_unused_measurement_along(world: World) -> None:
    keep(keep_check_results_days=30, keep_failed_rows_days=None)
    old, newer = results_of(world.admin, "nulls in id", "fail", "pass")
    shared, own = (
        Measurement.objects.create(identity=name, value=1, data_timestamp=T0, scan=old.scan)
        for name in ("shared", "own")
    )
    CheckResult.objects.filter(pk=old.pk).update(measurement=own)
    CheckResult.objects.filter(pk__in=[newer.pk, world.orders_fail.pk]).update(measurement=shared)
    sample = sample_of(old, file_id="f-old", old=False)
    received_long_ago(old)

    run_housekeeping(now=NOW, pause=0)

    assert not exists(old)
    assert not exists(sample)
    assert not exists(own)
    assert exists(shared)


def test_with_results_kept_forever_no_result_is_deleted(world: World) -> None:
    keep(keep_check_results_days=None)
    rows = results_of(world.admin, "forever", "fail", "pass", "warn")
    received_long_ago(*rows)

    report = run_housekeeping(now=NOW, pause=0)

    assert all(exists(row) for row in rows)
    assert report.counts["check results"] == 0


# --- Failed-row samples ---------------------------------------------------------------------------


def test_samples_go_on_their_own_schedule_while_their_results_stay(world: World) -> None:
    keep(keep_check_results_days=None, keep_failed_rows_days=30)
    old_sample = sample_of(world.orders_warn, file_id="f-1")
    new_sample = sample_of(world.orders_warn, file_id="f-2", old=False)
    never_claimed = sample_of(None, file_id="f-3")

    report = run_housekeeping(now=NOW, pause=0)

    assert not exists(old_sample)
    assert not exists(never_claimed)
    assert exists(new_sample)
    assert exists(world.orders_warn)
    assert report.counts["failed-row samples"] == 2


def test_samples_of_an_open_incident_stay_until_it_is_resolved(world: World) -> None:
    keep(keep_failed_rows_days=30)
    sample = sample_of(world.orders_fail, file_id="f-open")
    incident = incidents.create_incident(
        by=world.manager, title="Empty orders", severity="critical", check_result_ids=[world.orders_fail.pk]
    )

    run_housekeeping(now=NOW, pause=0)
    assert exists(sample)

    Incident.objects.filter(pk=incident.pk).update(status=Status.RESOLVED)
    run_housekeeping(now=NOW, pause=0)
    assert not exists(sample)


# --- Scans ----------------------------------------------------------------------------------------


def test_old_scans_lose_their_logs_and_go_once_no_result_is_left(world: World) -> None:
    keep(keep_check_results_days=30, keep_scans_days=60)
    gone, kept = results_of(world.admin, "scan check", "fail", "pass")
    Scan.objects.filter(pk__in=[gone.scan_id, kept.scan_id]).update(
        created_at=OLD, logs=[{"level": "info", "message": "scanning"}]
    )
    metric = Measurement.objects.create(identity="row_count", value=5, data_timestamp=T0, scan=gone.scan)
    empty = Scan.objects.create(data_timestamp=T0, created_at=OLD, logs=[{"message": "failed"}])
    recent = Scan.objects.create(data_timestamp=T0, logs=[{"message": "fresh"}])
    received_long_ago(gone, kept)

    report = run_housekeeping(now=NOW, pause=0)

    assert not Scan.objects.filter(pk__in=[gone.scan_id, empty.pk]).exists()
    assert not exists(metric)
    assert Scan.objects.get(results=kept).logs == []
    assert Scan.objects.get(pk=recent.pk).logs == [{"message": "fresh"}]
    assert report.counts["scans"] == 2
    assert report.counts["scan logs emptied"] == 3


# --- Delivery logs --------------------------------------------------------------------------------


def delivery(integration: Integration, status: str, finished: dt.datetime | None) -> Delivery:
    event = Event.objects.create(
        message_id=Event.new_message_id(), type="incidentCreated", payload={}, created_at=OLD
    )
    row = Delivery.objects.create(
        event=event,
        integration=integration,
        status=status,
        give_up_at=NOW,
        created_at=OLD,
        finished_at=finished,
    )
    DeliveryAttempt.objects.create(delivery=row, number=1, outcome="delivered")
    return row


def test_finished_deliveries_go_with_their_attempts_and_unfinished_ones_stay(world: World) -> None:
    keep(keep_delivery_log_days=30)
    hook = Integration.objects.create(name="Hook", kind="webhook", url="https://example.com/hook")
    delivered = delivery(hook, "delivered", OLD)
    failed = delivery(hook, "failed", OLD)
    recent = delivery(hook, "delivered", NOW)
    pending = delivery(hook, "pending", None)
    delivering = delivery(hook, "delivering", None)

    report = run_housekeeping(now=NOW, pause=0)

    assert not Delivery.objects.filter(pk__in=[delivered.pk, failed.pk]).exists()
    assert not Event.objects.filter(pk__in=[delivered.event_id, failed.event_id]).exists()
    assert not DeliveryAttempt.objects.filter(delivery_id__in=[delivered.pk, failed.pk]).exists()
    for still in (recent, pending, delivering):
        assert exists(still)
        assert Event.objects.filter(pk=still.event_id).exists()
    assert report.counts["deliveries"] == 2
    assert report.counts["events"] == 2


# --- Rows with fixed lifetimes --------------------------------------------------------------------


def test_expired_tokens_old_login_failures_stale_heartbeats_and_old_task_rows_go(world: World) -> None:
    key, _ = ApiKey.issue(world.admin)
    expired = SodaToken.objects.create(
        token_hash="a" * 64, api_key=key, user=world.admin, expires_at=NOW - dt.timedelta(minutes=1)
    )
    live = SodaToken.objects.create(
        token_hash="b" * 64, api_key=key, user=world.admin, expires_at=NOW + dt.timedelta(hours=1)
    )
    old_failure = LoginFailure.objects.create(email="x@example.com", at=NOW - dt.timedelta(days=1))
    new_failure = LoginFailure.objects.create(email="x@example.com", at=NOW)
    dead = WorkerHeartbeat.objects.create(
        name="h:1:1", hostname="h", pid=1, started_at=OLD, seen_at=NOW - dt.timedelta(days=2)
    )
    alive = WorkerHeartbeat.objects.create(name="h:2:2", hostname="h", pid=2, started_at=OLD, seen_at=NOW)

    def task(status: str, finished: dt.datetime | None) -> DBTaskResult:
        return DBTaskResult.objects.create(
            status=status,
            args_kwargs={},
            task_path="x",
            backend_name="default",
            run_after=OLD,
            finished_at=finished,
        )

    old_task = task("SUCCESSFUL", OLD)
    old_failed_task = task("FAILED", OLD)
    new_task = task("SUCCESSFUL", NOW)
    waiting_task = task("READY", None)

    run_housekeeping(now=NOW, pause=0)

    for gone in (expired, old_failure, dead, old_task, old_failed_task):
        assert not exists(gone), gone
    for still in (live, new_failure, alive, new_task, waiting_task):
        assert exists(still), still


# --- How it runs ----------------------------------------------------------------------------------


def test_deleting_goes_in_batches_of_the_given_size(world: World) -> None:
    keep(keep_check_results_days=30)
    rows = results_of(world.admin, "batched", *["fail"] * 11)
    received_long_ago(*rows[:10])

    with CaptureQueriesContext(connection) as queries:
        report = run_housekeeping(now=NOW, batch_size=3, pause=0)

    deletes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "catalog_checkresult"')
    ]
    assert report.counts["check results"] == 10
    assert len(deletes) == 4  # 3 + 3 + 3 + 1
    assert report.transactions == 4
    assert CheckResult.objects.filter(pk__in=[row.pk for row in rows]).count() == 1


def test_a_dry_run_counts_and_deletes_nothing(world: World) -> None:
    keep(keep_check_results_days=30)
    rows = results_of(world.admin, "dry", "fail", "fail", "pass")
    received_long_ago(*rows)
    out = StringIO()

    call_command("housekeeping", "--dry-run", stdout=out)

    assert "check results: would remove 2" in out.getvalue()
    assert "nothing was deleted" in out.getvalue()
    assert all(exists(row) for row in rows)


def test_the_command_reports_what_it_deleted(world: World) -> None:
    keep(keep_check_results_days=30)
    rows = results_of(world.admin, "for real", "fail", "fail", "pass")
    received_long_ago(*rows)
    out = StringIO()

    call_command("housekeeping", "--batch-size", "1", stdout=out)

    assert "check results: removed 2" in out.getvalue()
    assert CheckResult.objects.filter(pk__in=[row.pk for row in rows]).count() == 1


def test_housekeeping_is_an_exclusive_periodic_job_of_the_worker() -> None:
    job = registered()["housekeeping"]

    assert not job.shared
    assert job.interval == settings.HOUSEKEEPING_SECONDS


@pytest.mark.django_db(transaction=True)
def test_two_workers_due_at_once_run_housekeeping_once() -> None:
    job = registered()["housekeeping"]
    runs: list[str] = []
    counting = Job(job.name, lambda: runs.append("ran"), job.interval, job.shared, job.lease_seconds)
    start = threading.Barrier(2)

    def worker(owner: str) -> None:
        try:
            start.wait()
            periodic.run_job(counting, owner)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert runs == ["ran"]
    row = PeriodicJob.objects.get(name="housekeeping")
    assert row.leased_by in {"worker-1", "worker-2"}
    assert row.lease_until is None
    assert row.last_finished_at is not None
