"""The production load test: real web and worker processes on one database, driven by locust.

`run(config)` prepares the database (migrations, `quell loadgen` data if it holds no incidents, API
keys and passwords for a few people, a webhook integration pointing at a receiver in this process),
starts the web server with N processes and M `quell worker` processes, runs locust headless for a
bounded time (bench/load_locustfile.py, in its own process), waits for the outbox to drain, and
checks:

- every request answered as expected (locust's failures; 409 version conflicts are expected);
- every event the load created reached the receiver with a valid Standard Webhooks signature, once per
  `webhook-id` (a repeat with the same id is allowed and counted, a different id is not);
- the logs of the web server and the workers hold no "database is locked", no 5xx and no traceback.

It writes a Markdown report and a JSON summary; `LoadReport.ok` is whether nothing went wrong.
Django must be set up (on the database under test) before this module is imported.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import http
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management import call_command, get_commands
from django.db import connection, connections
from django.db.models import Count, Max

from quell.accounts import permissions
from quell.accounts import services as accounts
from quell.accounts.models import User
from quell.catalog import visibility
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult
from quell.incidents import queries as incident_queries
from quell.incidents.models import Incident
from quell.integrations import services as integrations
from quell.integrations.models import UNFINISHED, Delivery, DeliveryStatus, Event, EventType, Integration
from quell.ops import loadgen

LOCUSTFILE = Path(__file__).with_name("load_locustfile.py")
INTEGRATION_NAME = "Load test receiver"
MEMBERS = 3
SEARCHES = [loadgen.COMMON_SEARCH, loadgen.RARE_SEARCH, "missing", "late", "duplicate rows"]
LOCKED = "database is locked"
SERVER_ERROR_PHRASES = [status.phrase for status in http.HTTPStatus if status >= 500]
# Django's django.request logger writes "<reason phrase>: <path>" for every 5xx it answers.
SERVER_ERROR_LINE = re.compile(rf"({'|'.join(map(re.escape, SERVER_ERROR_PHRASES))}): /")
# Quell's JSON request log (quell.lib.logs) gives each request's status as a field.
SERVER_ERROR_STATUS = re.compile(r'"status": 5\d\d\b')
START_SECONDS = 60.0
STOP_SECONDS = 30.0


@dataclass
class LoadConfig:
    web_processes: int = 1
    workers: int = 1
    users: int = 10
    duration: str = "30s"
    spawn_rate: float = 5.0
    incidents: int = 2000
    days: int = 60
    drain_seconds: float = 180.0
    # Each locust user waits between these many seconds between two tasks.
    think_seconds: tuple[float, float] = (0.2, 1.5)
    # "serve" (quell serve), "gunicorn" (gunicorn's defaults: sync workers), or "auto" (serve if present).
    server: str = "auto"
    out_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="quell-load-")))


@dataclass
class Route:
    name: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float


@dataclass
class LoadReport:
    database: str
    web_processes: int
    workers: int
    users: int
    duration: str
    server_command: str
    requests: int = 0
    failures: int = 0
    routes: list[Route] = field(default_factory=list)
    failure_samples: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    events_expected: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    events_delivered: int = 0
    events_missing: list[str] = field(default_factory=list)
    events_without_delivery: int = 0
    deliveries_unfinished: int = 0
    deliveries_failed: int = 0
    webhook_requests: int = 0
    webhook_repeats: int = 0
    webhook_unexpected: int = 0
    webhook_bad_signatures: int = 0
    incidents_created: int = 0
    locked_errors: dict[str, int] = field(default_factory=dict)
    server_errors: dict[str, int] = field(default_factory=dict)
    tracebacks: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# --- The webhook receiver -------------------------------------------------------------------------


class Receiver:
    """Records every webhook POST and checks its Standard Webhooks signature against the secret."""

    def __init__(self) -> None:
        self.secret = ""
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.bad_signatures: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.record(
                    self.headers.get("webhook-id", ""),
                    self.headers.get("webhook-timestamp", ""),
                    self.headers.get("webhook-signature", ""),
                    body,
                )
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def record(self, message_id: str, timestamp: str, signatures: str, body: bytes) -> None:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        wanted = "v1," + base64.b64encode(digest).decode()
        try:
            body_id = json.loads(body).get("id")
        except ValueError:
            body_id = None
        with self.lock:
            self.seen[message_id] += 1
            if wanted not in signatures.split(" ") or body_id != message_id:
                self.bad_signatures.append(message_id)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Preparing the database -----------------------------------------------------------------------


def prepare_database(config: LoadConfig, log: Any) -> None:
    print("Migrating the database", file=log, flush=True)
    call_command("migrate", verbosity=0)
    if not Incident.objects.exists():
        scale = loadgen.Scale(incidents=config.incidents, days=config.days)
        print(f"Filling the database: {loadgen.describe(scale)}", file=log, flush=True)
        loadgen.generate(scale, progress=False)


def _top(field_name: str, n: int) -> list[int]:
    rows = Incident.objects.values(field_name).annotate(n=Count("id")).order_by("-n", field_name)[:n]
    return [row[field_name] for row in rows]


def persona(user: User, password: str) -> dict[str, Any] | None:
    """What one person works on in the load: the incidents, results and datasets they may manage."""
    manageable = list(
        visibility.datasets_with(user, permissions.MANAGE_INCIDENTS)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not manageable:
        return None
    pool = list(
        incident_queries.visible_incidents(user)
        .filter(datasets__in=manageable)
        .order_by("-created_at", "-id")
        .values("id", "number")
        .distinct()[:300]
    )
    failing = list(
        CheckResult.objects.filter(dataset_id__in=manageable, outcome__in=FAILING_OUTCOMES)
        .order_by("-id")
        .values_list("id", flat=True)[:500]
    )
    if len(pool) < 5 or len(failing) < 5:
        return None
    leads = {
        str(ds): list(incident_queries.lead_candidates({ds}, by=user).values_list("pk", flat=True)[:20])
        for ds in manageable[:200]
    }
    key, secret = accounts.create_api_key(user=user, name="load test")
    return {
        "email": user.email,
        "password": password,
        "userId": user.pk,
        "admin": user.is_admin,
        "keyId": key.key_id,
        "keySecret": secret,
        "incidents": pool,
        "failingResultIds": failing,
        "datasetIds": manageable[:100],
        "checkIds": list(
            Check.objects.filter(dataset_id__in=manageable).order_by("pk").values_list("pk", flat=True)[:200]
        ),
        "leadsByDataset": leads,
    }


def people() -> list[User]:
    """The admin, then the members who lead the most incidents."""
    admin = User.objects.filter(global_role="admin", is_active=True).order_by("pk").first()
    if admin is None:
        raise RuntimeError("The database has no active admin; run `quell loadgen` on an empty database.")
    busiest = (
        User.objects.filter(is_active=True)
        .exclude(global_role="admin")
        .annotate(n=Count("led_incidents"))
        .order_by("-n", "pk")[: MEMBERS * 4]
    )
    return [admin, *busiest]


def write_plan(path: Path, config: LoadConfig) -> dict[str, Any]:
    personas: list[dict[str, Any]] = []
    for user in people():
        if len(personas) > MEMBERS:
            break
        password = secrets.token_urlsafe(16)
        found = persona(user, password)
        if found is None:
            continue
        user.set_password(password)
        user.save(update_fields=["password"])
        personas.append(found)
    if not personas or not personas[0]["admin"]:
        raise RuntimeError("Could not find an admin with incidents to work on.")
    plan = {
        "personas": personas,
        "totalIncidents": Incident.objects.count(),
        "filters": {"leadIds": _top("lead", 10), "reporterIds": _top("reporter", 10)},
        "searches": SEARCHES,
        "thinkSeconds": list(config.think_seconds),
        "ingest": {
            "dataSource": "load_api",
            "sodaDataSource": "load_soda",
            "tables": 10,
            "checksPerTable": 10,
        },
    }
    # It holds passwords and API secrets.
    path.touch(mode=0o600)
    path.write_text(json.dumps(plan))
    return plan


def add_webhook(url: str) -> str:
    """A fresh webhook to this run's receiver, for every event; older load-test receivers removed."""
    admin = User.objects.filter(global_role="admin", is_active=True).order_by("pk").first()
    assert admin is not None
    for old in Integration.objects.filter(name=INTEGRATION_NAME):
        integrations.delete_integration(old.pk, by=admin)
    _, secret = integrations.create_integration(
        by=admin,
        name=INTEGRATION_NAME,
        kind="webhook",
        url=url,
        events=[EventType.INCIDENT_CREATED, EventType.INCIDENT_UPDATED, EventType.CHECK_EVALUATION],
    )
    assert secret
    return secret


# --- Processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url() -> str:
    """The URL of the database Django is on, for the child processes."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_command(bind: str, processes: int, server: str = "auto") -> list[str]:
    """`quell serve`, Quell's production server, or plain gunicorn (also where `serve` is missing)."""
    if server == "serve" or (server == "auto" and "serve" in get_commands()):
        return [sys.executable, "-m", "quell", "serve", "--bind", bind, "--workers", str(processes)]
    return [sys.executable, "-m", "gunicorn", "quell.wsgi:application", "-w", str(processes), "-b", bind]


class Processes:
    """Child processes with their output in files; all stopped (then killed) on exit."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes], float]] = []

    def start(
        self, name: str, command: list[str], stop_seconds: float = STOP_SECONDS
    ) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - the child writes it until it ends
        # Our own interpreter running Quell, gunicorn or locust, with no outside input in the command.
        child = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        log.close()
        self.children.append((name, child, stop_seconds))
        return child

    def stop(self) -> None:
        for _, child, _ in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child, seconds in self.children:
            try:
                child.wait(seconds)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def died(self) -> list[str]:
        return [
            f"{name} exited with {child.returncode}"
            for name, child, _ in self.children
            if child.poll() is not None
        ]

    def logs(self) -> dict[str, str]:
        return {path.stem: path.read_text(errors="replace") for path in sorted(self.log_dir.glob("*.log"))}


@contextmanager
def running(config: LoadConfig, env: dict[str, str], base_url: str, bind: str) -> Iterator[Processes]:
    processes = Processes(config.out_dir, env)
    try:
        processes.start("web", server_command(bind, config.web_processes, config.server))
        for n in range(config.workers):
            processes.start(f"worker-{n + 1}", [sys.executable, "-m", "quell", "worker"])
        wait_until_ready(base_url, processes)
        yield processes
    finally:
        processes.stop()


def wait_until_ready(base_url: str, processes: Processes) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        with suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/login/", timeout=5).status_code == 200:
                return
        if processes.died() or time.monotonic() > deadline:
            raise RuntimeError(
                f"Quell did not start: {processes.died() or 'no answer'}; see {processes.log_dir}"
            )
        time.sleep(0.2)


def run_locust(config: LoadConfig, env: dict[str, str], base_url: str, plan: Path) -> tuple[Path, Path]:
    stats = config.out_dir / "locust"
    outcomes = config.out_dir / "outcomes.json"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(config.users),
        "--spawn-rate",
        str(config.spawn_rate),
        "--run-time",
        config.duration,
        "--host",
        base_url,
        "--csv",
        str(stats),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
    ]
    locust_env = {**env, "QUELL_LOAD_PLAN": str(plan), "QUELL_LOAD_OUTCOMES": str(outcomes)}
    with open(config.out_dir / "locust-output.log", "wb") as log:
        # Locust's exit code only says whether a request failed; the statistics say which.
        subprocess.run(command, env=locust_env, stdout=log, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    return Path(f"{stats}_stats.csv"), outcomes


# --- Checking -------------------------------------------------------------------------------------


def read_stats(path: Path, report: LoadReport) -> None:
    with path.open() as rows:
        for row in csv.DictReader(rows):
            if row["Name"] == "Aggregated":
                report.requests = int(row["Request Count"])
                report.failures = int(row["Failure Count"])
                continue
            report.routes.append(
                Route(
                    name=row["Name"]
                    if row["Name"].startswith(row["Type"])
                    else f"{row['Type']} {row['Name']}",
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    p50_ms=float(row["50%"] or 0),
                    p95_ms=float(row["95%"] or 0),
                )
            )
    report.routes.sort(key=lambda route: route.name)
    failures = path.with_name(path.name.replace("_stats.csv", "_failures.csv"))
    if failures.exists():
        with failures.open() as rows:
            report.failure_samples = [
                f"{row['Method']} {row['Name']}: {row['Error'][:300]} (x{row['Occurrences']})"
                for row in csv.DictReader(rows)
            ][:20]


def wait_for_deliveries(integration: Integration, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while Delivery.objects.filter(integration=integration, status__in=UNFINISHED).exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.5)


def check_deliveries(
    report: LoadReport, receiver: Receiver, first_event_id: int, drain_seconds: float
) -> None:
    integration = Integration.objects.get(name=INTEGRATION_NAME)
    wait_for_deliveries(integration, drain_seconds)
    made = Event.objects.filter(pk__gt=first_event_id)
    report.events_expected = made.count()
    report.events_by_type = dict(made.values_list("type").annotate(n=Count("id")).order_by("type"))
    report.events_without_delivery = made.exclude(deliveries__integration=integration).count()
    ours = Delivery.objects.filter(integration=integration)
    report.deliveries_unfinished = ours.filter(status__in=UNFINISHED).count()
    report.deliveries_failed = ours.filter(status=DeliveryStatus.FAILED).count()
    expected = set(made.values_list("message_id", flat=True))
    with receiver.lock:
        seen = Counter(receiver.seen)
        bad = list(receiver.bad_signatures)
    report.webhook_requests = sum(seen.values())
    report.webhook_repeats = sum(n - 1 for n in seen.values())
    report.events_delivered = len(expected & set(seen))
    report.events_missing = sorted(expected - set(seen))[:20]
    report.webhook_unexpected = len(set(seen) - expected)
    report.webhook_bad_signatures = len(bad)


def scan_logs(report: LoadReport, logs: dict[str, str]) -> None:
    for name, text in logs.items():
        if name == "locust-output":
            continue
        report.locked_errors[name] = text.count(LOCKED)
        report.server_errors[name] = sum(
            1
            for line in text.splitlines()
            if SERVER_ERROR_LINE.search(line) or SERVER_ERROR_STATUS.search(line)
        )
        report.tracebacks[name] = text.count("Traceback (most recent call last)")


def judge(report: LoadReport) -> None:
    errors = report.errors
    if report.requests == 0:
        errors.append("locust made no requests")
    if report.failures:
        errors.append(f"{report.failures} requests failed")
    if report.events_expected == 0:
        errors.append("the load created no events, so delivery was not tested")
    if report.events_missing:
        errors.append(f"{report.events_expected - report.events_delivered} events never reached the receiver")
    if report.events_without_delivery:
        errors.append(f"{report.events_without_delivery} events have no delivery to the receiver")
    if report.deliveries_unfinished or report.deliveries_failed:
        errors.append(
            f"{report.deliveries_unfinished} deliveries unfinished and {report.deliveries_failed} failed"
        )
    if report.webhook_unexpected:
        errors.append(f"{report.webhook_unexpected} webhook ids received that no event has")
    if report.webhook_bad_signatures:
        errors.append(f"{report.webhook_bad_signatures} webhooks failed signature verification")
    if report.incidents_created != report.events_by_type.get(EventType.INCIDENT_CREATED, 0):
        errors.append(
            f"{report.incidents_created} incidents were created but "
            f"{report.events_by_type.get(EventType.INCIDENT_CREATED, 0)} incidentCreated events recorded"
        )
    for label, counts in (
        ('"database is locked"', report.locked_errors),
        ("5xx answers logged", report.server_errors),
        ("tracebacks", report.tracebacks),
    ):
        for name, n in counts.items():
            if n:
                errors.append(f"{n} {label} in the {name} log")


# --- Running --------------------------------------------------------------------------------------


def run(config: LoadConfig, log: Any = sys.stderr) -> LoadReport:
    config.out_dir.mkdir(parents=True, exist_ok=True)
    prepare_database(config, log)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "QUELL_DATABASE_URL": database_url(),
        "QUELL_DATA_DIR": str(settings.DATA_DIR),
        "QUELL_BASE_URL": base_url,
        "QUELL_DEBUG": "0",
        "QUELL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    report = LoadReport(
        database=f"{connection.vendor} {_version()}",
        web_processes=config.web_processes,
        workers=config.workers,
        users=config.users,
        duration=config.duration,
        server_command=" ".join(
            Path(part).name if part == sys.executable else part
            for part in server_command(f"127.0.0.1:{port}", config.web_processes, config.server)
        ),
    )
    plan_path = config.out_dir / "plan.json"
    with Receiver() as receiver:
        receiver.secret = add_webhook(receiver.url)
        write_plan(plan_path, config)
        first_event_id = Event.objects.aggregate(n=Max("id"))["n"] or 0
        incidents_before = Incident.objects.aggregate(n=Max("id"))["n"] or 0
        connections.close_all()
        print(
            f"Load: {config.users} users for {config.duration} on {report.database}, "
            f"{config.web_processes} web processes, {config.workers} workers; logs in {config.out_dir}",
            file=log,
            flush=True,
        )
        with running(config, env, base_url, f"127.0.0.1:{port}") as processes:
            print(f"Quell answers at {base_url}; running locust", file=log, flush=True)
            stats, outcomes = run_locust(config, env, base_url, plan_path)
            if stats.exists():
                read_stats(stats, report)
            else:
                report.errors.append(
                    f"locust wrote no statistics; see {config.out_dir / 'locust-output.log'}"
                )
            if outcomes.exists():
                report.outcomes = json.loads(outcomes.read_text())
            print("Load done; waiting for the webhooks to be delivered", file=log, flush=True)
            check_deliveries(report, receiver, first_event_id, config.drain_seconds)
            report.errors += [f"{died} during the load" for died in processes.died()]
        report.incidents_created = Incident.objects.filter(pk__gt=incidents_before).count()
    scan_logs(report, processes.logs())
    judge(report)
    return report


def _version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        return str(cursor.fetchone()[0]).split(" ")[0]


# --- Reporting ------------------------------------------------------------------------------------


def markdown(report: LoadReport) -> str:
    lines = [
        f"**{'PASSED' if report.ok else 'FAILED'}**: {report.database}, {report.web_processes} web processes "
        f"(`{report.server_command}`), {report.workers} workers, {report.users} users for {report.duration}, "
        f"Python {platform.python_version()}.",
        "",
        f"- requests served: {report.requests:,}; failures: {report.failures:,}",
        "- expected outcomes: "
        + (", ".join(f"{name} {n}" for name, n in sorted(report.outcomes.items())) or "none"),
        f"- incidents created: {report.incidents_created:,}",
        f"- webhook events the load created: {report.events_expected:,} "
        f"({', '.join(f'{kind} {n}' for kind, n in report.events_by_type.items())}); "
        f"delivered: {report.events_delivered:,}; repeats with the same id: {report.webhook_repeats}; "
        f"unexpected ids: {report.webhook_unexpected}; bad signatures: {report.webhook_bad_signatures}; "
        f"unfinished: {report.deliveries_unfinished}; failed: {report.deliveries_failed}",
        f'- "database is locked" in logs: {sum(report.locked_errors.values())}; 5xx logged: '
        f"{sum(report.server_errors.values())}; tracebacks: {sum(report.tracebacks.values())}",
        "",
        "| Route | Requests | Failures | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {route.name} | {route.requests:,} | {route.failures} | {route.p50_ms:.0f} | {route.p95_ms:.0f} |"
        for route in report.routes
    ]
    if report.errors:
        lines += ["", "Errors:", ""] + [f"- {error}" for error in report.errors]
    if report.failure_samples:
        lines += ["", "Failed requests:", ""] + [f"- {sample}" for sample in report.failure_samples]
    return "\n".join(lines) + "\n"
