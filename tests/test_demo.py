"""The demo organisation (`quell demo`, `quell start --demo`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Count, Max, Min

from quell.accounts.models import ApiKey, GlobalRole, Organization, Responsibility, User
from quell.catalog.models import Check, CheckResult, Dataset, Measurement, Outcome, Scan
from quell.catalog.visibility import datasets_with
from quell.demo import DAYS, DEMO_PASSWORD, DemoRefused, DemoSummary, load_demo
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentRule,
    Mute,
    ResolutionReason,
    Severity,
    Status,
    TimelineEvent,
)
from quell.incidents.mutes import muted_check_ids
from quell.incidents.queries import visible_incidents
from tests.conftest import OWN_SQLITE_DATA_DIR, make_user, push

NOW = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo(builtin_rows: None) -> DemoSummary:
    return load_demo(now=NOW)


def user(email: str) -> User:
    return User.objects.get(email=email)


def test_people_in_every_role_log_in_with_the_demo_password(demo: DemoSummary) -> None:
    assert Organization.get().name == "Acme Data"
    assert len(demo.logins) == 6
    for login in demo.logins:
        found = authenticate(None, email=login.email, password=DEMO_PASSWORD)
        assert isinstance(found, User), login.email
        assert authenticate(None, email=login.email, password="wrong-password") is None
    assert user("admin@quell.example").global_role == GlobalRole.ADMIN
    # The admin, and Quell's system user, who acts for the incident rules and cannot log in.
    assert User.objects.filter(global_role=GlobalRole.ADMIN, is_system=False).count() == 1
    holders = {
        role: set(
            Responsibility.objects.filter(role__name=role, user__isnull=False).values_list(
                "user__email", flat=True
            )
        )
        for role in ("Manager", "Editor", "Viewer")
    }
    assert len(holders["Manager"]) == 1
    assert len(holders["Editor"]) == 2
    assert len(holders["Viewer"]) == 1
    named = holders["Manager"] | holders["Editor"] | holders["Viewer"]
    outsiders = set(
        User.objects.exclude(email__in=named)
        .exclude(global_role=GlobalRole.ADMIN)
        .values_list("email", flat=True)
    )
    assert len(outsiders) == 1
    assert "\n".join(demo.login_lines()).count("@quell.example") == 6


def test_the_private_dataset_is_invisible_to_the_user_without_access(demo: DemoSummary) -> None:
    payments = Dataset.objects.get(data_source__name="snowflake_prod", name="payments")
    assert demo.private_dataset == "snowflake_prod/payments"
    assert not payments.responsibilities.filter(group__isnull=False).exists()
    assert set(payments.responsibilities.values_list("role__name", flat=True)) == {
        "Manager",
        "Editor",
        "Viewer",
    }

    outsider = user("oscar@quell.example")
    visible = set(datasets_with(outsider))
    assert payments not in visible
    assert visible == set(Dataset.objects.exclude(pk=payments.pk))
    payment_incidents = Incident.objects.filter(datasets=payments)
    assert payment_incidents.exists()
    assert not visible_incidents(outsider).filter(pk__in=payment_incidents).exists()

    for email in ("admin@quell.example", "marco@quell.example", "elena@quell.example", "vera@quell.example"):
        assert payments in set(datasets_with(user(email))), email
    assert payments not in set(datasets_with(user("sam@quell.example")))


def test_checks_have_four_weeks_of_daily_results_with_every_outcome(demo: DemoSummary) -> None:
    assert Dataset.objects.count() == demo.datasets >= 8
    per_dataset = Dataset.objects.annotate(n=Count("checks")).values_list("name", "n")
    assert all(3 <= n <= 6 for _, n in per_dataset), list(per_dataset)
    assert Check.objects.filter(name="schema").exists()
    assert Check.objects.filter(name__startswith="freshness(").exists()

    span = CheckResult.objects.aggregate(first=Min("data_timestamp"), last=Max("data_timestamp"))
    assert span["last"] - span["first"] >= dt.timedelta(weeks=3)
    assert span["last"] < NOW
    assert set(CheckResult.objects.values_list("outcome", flat=True)) == {
        Outcome.PASS,
        Outcome.WARN,
        Outcome.FAIL,
    }
    for check in Check.objects.annotate(n=Count("results")):
        assert check.n == DAYS, check.name
    # One scan per data source per day, each with that source's results.
    assert Scan.objects.count() == 3 * DAYS
    assert all(
        len({r.dataset.data_source_id for r in scan.results.select_related("dataset")}) == 1
        for scan in Scan.objects.all()[:6]
    )
    # Some checks got worse over the last days: they fail now and passed a week ago.
    week_ago = span["last"] - dt.timedelta(days=7)

    def passed_a_week_ago(check: Check) -> bool:
        result = check.results.filter(data_timestamp__lte=week_ago).order_by("-data_timestamp").first()
        return result is not None and result.outcome == Outcome.PASS

    failing_now = Check.objects.filter(last_outcome__in=[Outcome.WARN, Outcome.FAIL])
    degraded = [check for check in failing_now if passed_a_week_ago(check)]
    assert len(degraded) >= 3

    # row_count is kept as a measurement too, with the same value as the check's result.
    orders = Dataset.objects.get(name="orders")
    measurements = Measurement.objects.filter(dataset=orders, metric_name="row_count")
    assert measurements.count() == DAYS
    results = {
        r.data_timestamp: r.value
        for r in CheckResult.objects.filter(dataset=orders, check_ref__name="row_count > 0")
    }
    assert all(results[m.data_timestamp] == m.value for m in measurements)


def test_incidents_cover_every_status_and_severity(demo: DemoSummary) -> None:
    incidents = list(Incident.objects.all())
    assert 12 <= len(incidents) <= 15
    assert {i.status for i in incidents} == set(Status.values)
    assert {i.severity for i in incidents} == set(Severity.values)
    assert len({i.lead_id for i in incidents}) >= 3
    assert len({i.reporter_id for i in incidents}) >= 3
    assert len({i.lead_id for i in incidents} | {i.reporter_id for i in incidents}) >= 4

    for incident in incidents:
        assert incident.timeline.filter(kind=EventKind.COMMENT).exists(), incident.title
        assert incident.created_at <= incident.updated_at < NOW
        if incident.status == Status.RESOLVED:
            assert incident.resolution_notes.strip(), incident.title
            assert incident.resolved_at is not None
        else:
            assert incident.resolved_at is None
    # Numbered in the order they were reported.
    by_number = sorted(incidents, key=lambda i: i.number)
    assert [i.created_at for i in by_number] == sorted(i.created_at for i in incidents)

    # One reopened by a person, one by the rule that had resolved it; both open now.
    reopenings = TimelineEvent.objects.filter(kind=EventKind.REOPENED)
    assert sorted(reopenings.values_list("rule_name", flat=True)) == ["", "Critical tables"]
    assert all(event.incident.status != Status.RESOLVED for event in reopenings)

    # Results attached after the incident was reported, and more than one dataset in one incident.
    late_links = [
        link
        for link in IncidentCheckResult.objects.select_related("incident")
        if link.added_at > link.incident.created_at
    ]
    assert len({link.incident_id for link in late_links}) >= 3
    assert Incident.objects.annotate(n=Count("datasets")).filter(n__gt=1).exists()
    assert not IncidentCheckResult.objects.filter(check_result__outcome=Outcome.PASS).exists()

    # The timeline reads in order, and nothing happens in the future.
    for incident in incidents:
        times = list(incident.timeline.order_by("id").values_list("created_at", flat=True))
        assert times == sorted(times)
        assert times[-1] < NOW


def test_two_rules_open_and_resolve_incidents_as_the_history_arrives(demo: DemoSummary) -> None:
    critical, every = IncidentRule.objects.order_by("position")
    assert (critical.name, critical.severity, critical.consecutive) == (
        "Critical tables",
        Severity.CRITICAL,
        1,
    )
    assert (critical.resolve_after_passes, critical.reopen_within_days, critical.lead) == (2, 7, None)
    assert set(critical.datasets.values_list("name", flat=True)) == {"orders", "payments"}
    assert (every.name, every.dataset_scoped, every.outcomes, every.consecutive) == (
        "Every failure",
        False,
        ["fail"],
        2,
    )
    assert every.lead == user("sam@quell.example")
    assert critical.created_at < NOW

    quell = User.objects.get(is_system=True)
    opened = Incident.objects.filter(rule__isnull=False)
    assert {incident.rule_id for incident in opened} == {critical.pk, every.pk}
    assert {incident.reporter_id for incident in opened} == {quell.pk}
    assert all(incident.created_at > critical.created_at for incident in opened)
    assert opened.filter(rule=critical, severity=Severity.CRITICAL).count() >= 2

    # "Every failure" waited for the second failure in a row, and opened with both; Sam, its lead,
    # leads it, and Quell attached the failures that followed.
    users = opened.get(rule=every, datasets__name="users")
    assert users.lead == user("sam@quell.example")
    links = list(users.links.select_related("check_result").order_by("check_result__data_timestamp"))
    assert [link.check_result.outcome for link in links] == [Outcome.FAIL] * 4
    assert [link.added_at == users.created_at for link in links] == [True, True, False, False]
    assert {link.added_by_id for link in links[2:]} == {quell.pk}
    # Sam cannot manage inventory, so its incident went to the first Manager there.
    inventory = opened.get(rule=every, datasets__name="inventory")
    assert inventory.lead == user("marco@quell.example")

    # "Critical tables" resolved one as recovered after two passes, and says which results passed.
    recovered = Incident.objects.get(resolution_reason=ResolutionReason.RECOVERED)
    assert (recovered.rule, recovered.status) == (critical, Status.RESOLVED)
    assert recovered.resolution_notes.startswith("Resolved by Quell's rule 'Critical tables'")
    assert recovered.resolution_notes.count("#") == 2
    # The check said it passed once, at the first pass; the second resolved it.
    passed = recovered.timeline.get(kind=EventKind.CHECK_PASSED)
    resolution = recovered.timeline.filter(actor=quell, rule_name=critical.name, kind=EventKind.CHANGED)
    assert set(resolution.values_list("field", flat=True)) == {
        "status",
        "resolutionReason",
        "resolutionNotes",
    }
    resolved_at = recovered.resolved_at
    assert resolved_at is not None
    assert {event.created_at for event in resolution} == {resolved_at}
    assert passed.actor == quell
    assert passed.created_at.date() + dt.timedelta(days=1) == resolved_at.date()
    assert recovered.created_at < resolved_at < NOW

    # And reopened another, same number, when its check failed again within reopenWithinDays.
    reopened = Incident.objects.get(timeline__kind=EventKind.REOPENED, timeline__rule_name=critical.name)
    assert reopened.rule == critical
    assert reopened.is_open
    assert reopened.timeline.filter(
        kind=EventKind.CHANGED, field="resolutionReason", new_value=ResolutionReason.RECOVERED
    ).exists()


def test_later_failures_fold_into_open_incidents_people_opened_too(demo: DemoSummary) -> None:
    quell = User.objects.get(is_system=True)
    folded = TimelineEvent.objects.filter(kind=EventKind.RESULT_ATTACHED, actor=quell, rule_name="")
    by_hand = folded.filter(incident__rule__isnull=True)
    assert by_hand.values("incident").distinct().count() >= 4
    assert not folded.filter(check_result__outcome=Outcome.PASS).exists()
    # A pass of a check of an open incident says so, once, as it comes.
    assert TimelineEvent.objects.filter(kind=EventKind.CHECK_PASSED, actor=quell).exists()
    assert Incident.objects.filter(status=Status.RESOLVED, resolution_reason=ResolutionReason.FIXED).exists()
    assert Incident.objects.filter(resolution_reason=ResolutionReason.EXPECTED).count() == 2


def test_a_muted_check_fails_on_and_opens_nothing(demo: DemoSummary) -> None:
    mute = Mute.objects.select_related("check_ref").get()
    check = mute.check_ref
    assert check is not None
    assert (check.dataset.name, check.name) == ("inventory", "min(quantity_on_hand) >= 0")
    assert mute.created_by == user("elena@quell.example")
    assert mute.reason.strip()
    assert mute.created_at < NOW < mute.until
    assert muted_check_ids([(check.pk, check.dataset_id)]) == {check.pk}

    since = CheckResult.objects.filter(check_ref=check, data_timestamp__gt=mute.created_at)
    assert since.count() >= 2
    assert set(since.values_list("outcome", flat=True)) == {Outcome.FAIL}
    assert not IncidentCheckResult.objects.filter(check_result__in=since).exists()
    # Before the mute, "Every failure" had opened one, which Elena resolved as expected.
    assert Incident.objects.get(rule__name="Every failure", datasets__name="inventory").resolution_reason == (
        ResolutionReason.EXPECTED
    )


def _fingerprint() -> list[Any]:
    results = CheckResult.objects.order_by("check_ref__name", "dataset__name", "data_timestamp").values_list(
        "dataset__name", "check_ref__name", "data_timestamp", "outcome", "value"
    )
    incidents = Incident.objects.order_by("number").values_list(
        "number", "title", "status", "severity", "lead__email", "reporter__email", "created_at"
    )
    events = TimelineEvent.objects.order_by("incident__number", "created_at", "kind", "text").values_list(
        "incident__number", "kind", "created_at", "text"
    )
    return [list(results), list(incidents), list(events)]


def _counts() -> dict[str, int]:
    models = (
        User,
        Dataset,
        Check,
        CheckResult,
        Scan,
        Measurement,
        Responsibility,
        Incident,
        TimelineEvent,
        ApiKey,
    )
    return {model.__name__: model.objects.count() for model in models}


def _load_and_roll_back() -> list[Any]:
    with transaction.atomic():
        load_demo(now=NOW)
        fingerprint = _fingerprint()
        transaction.set_rollback(True)
    return fingerprint


def test_the_demo_is_deterministic_and_loads_only_once(builtin_rows: None) -> None:
    first = _load_and_roll_back()
    assert not Dataset.objects.exists()

    load_demo(now=NOW)
    assert _fingerprint() == first

    before, org = _counts(), Organization.get().name
    with pytest.raises(DemoRefused, match="already holds"):
        load_demo(now=NOW)
    assert _counts() == before
    assert Organization.get().name == org


def test_the_demo_refuses_a_database_with_real_data(builtin_rows: None) -> None:
    admin = make_user("owner@example.com", admin=True)
    push(admin, "warehouse", "orders", ("row_count > 0", "pass", 10))
    before = _counts()
    with pytest.raises(DemoRefused, match="empty"):
        load_demo()
    assert _counts() == before


def test_the_demo_refuses_when_its_users_exist(builtin_rows: None) -> None:
    make_user("admin@quell.example", admin=True)
    with pytest.raises(DemoRefused, match=r"admin@quell\.example"):
        load_demo()
    assert User.objects.count() == 1


# --- quell start --demo ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (which has already exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="inspects processes through /proc")
@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_start_with_demo_serves_logins_and_stops_its_worker_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "QUELL_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    for name in ("QUELL_DATABASE_URL", "QUELL_BASE_URL"):
        env.pop(name, None)
    log_path = tmp_path / "start.log"
    command = [sys.executable, "-m", "quell", "start", "--demo", "--addr", f"127.0.0.1:{port}"]
    pids: list[int] = []
    with log_path.open("wb") as log:
        start = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"

        def login_page_answers() -> bool:
            assert start.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/login/", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        assert _wait_until(login_page_answers, 60), log_path.read_text()
        output = log_path.read_text()
        assert f"{base}/login/" in output
        assert "admin@quell.example" in output
        assert DEMO_PASSWORD in output
        worker_pid = int(re.findall(r"Task worker running \(pid (\d+)\)", output)[-1])
        server_pid = int(re.findall(r"Web server running \(pid (\d+)\)", output)[-1])
        pids += [worker_pid, server_pid]
        assert _alive(worker_pid)
        assert b"worker" in Path(f"/proc/{worker_pid}/cmdline").read_bytes().split(b"\0")

        created = subprocess.run(
            [sys.executable, "-m", "quell", "apikey", "create", "--email", "admin@quell.example"],
            env=env,
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        )
        key = json.loads(created.stdout)
        answer = httpx.get(
            f"{base}/api/v1/incidents", auth=(key["apiKeyId"], key["apiKeySecret"]), timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["totalElements"] >= 8
        assert {i["status"] for i in body["content"]} == set(Status.values)

        start.send_signal(signal.SIGTERM)
        assert start.wait(timeout=60) == 0, log_path.read_text()
        assert _wait_until(lambda: not _alive(worker_pid) and not _alive(server_pid), 10)
        assert "Stopped (SIGTERM)" in log_path.read_text()
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
