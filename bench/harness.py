"""Time Quell's hot operations three ways: end to end over HTTP, the floor endpoint, and the SQL alone.

- End to end: a real server process (`quell serve`, or `quell runserver`), called over HTTP as a
  client would: with an API key, a signed-in session for web pages, or Soda Core's login token.
- Floor: the same server answering the same page from bench.queries (the hand-written SQL),
  serialised straight to JSON, with the same authentication; for writes, the least SQL with the same
  effect in one transaction. Mounted only because the harness starts the server with bench.settings.
- Database part: the statements Quell issues for the request, captured in this process with
  CaptureQueriesContext and re-executed raw, against the hand-written queries on the same database.
  Authentication's own statements (API key, session, Soda token) are left out. Writes are captured
  and replayed inside transactions that are rolled back, so every call sees the same database.

Only timings are reported; nothing here asserts how fast anything must be.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench import queries
from quell.accounts.models import ApiKey, User
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult
from quell.incidents import queries as incident_queries
from quell.incidents import services as incident_services
from quell.incidents.models import OPEN_STATUSES, Incident, IncidentDataset, Severity
from quell.ops.loadgen import COMMON_SEARCH, RARE_SEARCH

Params = list[tuple[str, str | int | float | bool | None]]
# The checkout that holds the bench package.
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Stats:
    median_ms: float
    p95_ms: float
    samples: int

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ordered = sorted(seconds)
        p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
        return cls(statistics.median(ordered) * 1000, p95 * 1000, len(ordered))


@dataclass
class Operation:
    name: str
    method: str = "GET"
    path: str = ""
    params: Params = field(default_factory=list)
    # For writes: the JSON body of the n-th call.
    body: Callable[[int], dict[str, Any]] | None = None
    as_member: bool = False
    web: bool = False
    floor_path: str | None = None
    # The floor's query parameters and, for writes, its n-th body, when they differ from Quell's.
    floor_params: Params | None = None
    floor_body: Callable[[int], dict[str, Any]] | None = None
    # For writes: the body of the request whose statements are captured (in a rolled-back transaction).
    capture_body: dict[str, Any] | None = None
    hand: Callable[[Any], Any] | None = None
    # When the operation is a service call with no page of its own, the call to capture instead.
    service: Callable[[], Any] | None = None
    repeats: int | None = None
    # Soda Core's protocol: the body carries a login token instead of an Authorization header.
    soda: bool = False

    @property
    def writes(self) -> bool:
        return self.method != "GET"


@dataclass
class Measurement:
    operation: str
    end_to_end: Stats | None = None
    floor: Stats | None = None
    quell_sql: Stats | None = None
    quell_queries: int | None = None
    hand_sql: Stats | None = None
    # Figures that failed (a timeout, an error answer), by figure name, with the reason.
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class Targets:
    """Ids the operations ask about, picked from what loadgen wrote."""

    admin: User
    member: User
    lead_id: int
    reporter_id: int
    dataset_id: int
    combined: dict[str, Any]
    incident_id: int
    incident_number: int
    check_id: int
    failing_result_ids: list[int]
    total: int


# What the harness itself writes: incidents titled "Bench …" and the scans of the bench_soda data
# source. Targets leave them out, so every run on a database measures the same pages, whatever
# earlier runs added (the newest open incident was the previous run's, with other datasets).
BENCH_TITLES = "Bench"
BENCH_DATA_SOURCE = "bench_soda"


def pick_targets() -> Targets:
    admin = User.objects.filter(global_role="admin", is_active=True).order_by("pk").first()
    assert admin is not None, "no admin: run `quell loadgen` first"
    member = (
        User.objects.filter(global_role="user", is_active=True)
        .annotate(n=Count("user_groups"))
        .order_by("-n", "pk")
        .first()
    )
    assert member is not None, "no member: run `quell loadgen` first"
    incidents = Incident.objects.exclude(title__startswith=BENCH_TITLES)
    lead_id = incidents.values("lead").annotate(n=Count("id")).order_by("-n", "lead")[0]["lead"]
    reporter_id = (
        incidents.values("reporter").annotate(n=Count("id")).order_by("-n", "reporter")[0]["reporter"]
    )
    dataset_id = (
        IncidentDataset.objects.exclude(incident__title__startswith=BENCH_TITLES)
        .values("dataset")
        .annotate(n=Count("id"))
        .order_by("-n", "dataset")[0]["dataset"]
    )
    open_one = (
        incidents.filter(status__in=OPEN_STATUSES).order_by("-created_at", "-id").first()
        or incidents.order_by("-created_at", "-id").first()
    )
    assert open_one is not None
    one_dataset = (
        IncidentDataset.objects.filter(incident=open_one)
        .order_by("dataset_id")
        .values_list("dataset_id", flat=True)[0]
    )
    busiest = incidents.annotate(n=Count("links")).order_by("-n", "-created_at", "-id").first()
    assert busiest is not None
    ours = CheckResult.objects.exclude(dataset__data_source__name=BENCH_DATA_SOURCE)
    check = (
        Check.objects.exclude(dataset__data_source__name=BENCH_DATA_SOURCE)
        .order_by("-last_result_at", "pk")
        .first()
    )
    assert check is not None
    failing = list(
        ours.filter(outcome__in=FAILING_OUTCOMES).order_by("-id").values_list("id", flat=True)[:2000]
    )
    return Targets(
        admin=admin,
        member=member,
        lead_id=lead_id,
        reporter_id=reporter_id,
        dataset_id=dataset_id,
        combined={
            "status": list(OPEN_STATUSES),
            "severity": [open_one.severity],
            "leadId": [open_one.lead_id],
            "datasetId": [one_dataset],
        },
        incident_id=busiest.pk,
        incident_number=busiest.number,
        check_id=check.pk,
        failing_result_ids=failing,
        total=Incident.objects.count(),
    )


SIZE = 50


def _list_params(filters: dict[str, Any], page: int = 0) -> Params:
    params: Params = [("size", SIZE), ("page", page)]
    for name, values in filters.items():
        for value in values if isinstance(values, list) else [values]:
            params.append((name, value))
    return params


def _list_query(filters: dict[str, Any], page: int = 0) -> queries.ListQuery:
    return queries.ListQuery(
        statuses=list(filters.get("status", [])),
        severities=list(filters.get("severity", [])),
        lead_ids=list(filters.get("leadId", [])),
        reporter_ids=list(filters.get("reporterId", [])),
        dataset_ids=list(filters.get("datasetId", [])),
        search=str(filters.get("search", "")),
        page=page,
        size=SIZE,
    )


def operations(t: Targets, creds: Credentials) -> list[Operation]:
    admin = queries.Caller(t.admin.pk, True)
    member = queries.Caller(t.member.pk, False)
    deep = max(1, (t.total // SIZE) // 2)
    cursor_page = deep_cursor_page(t, creds, deep)

    def listing(name: str, filters: dict[str, Any], page: int = 0, as_member: bool = False) -> Operation:
        caller = member if as_member else admin
        query = _list_query(filters, page)
        return Operation(
            name=name,
            path="/api/v1/incidents",
            params=_list_params(filters, page),
            as_member=as_member,
            floor_path="/bench/floor/incidents",
            hand=lambda cursor: queries.incident_list(cursor, caller, query),
        )

    ops = [
        listing("list, first page", {}),
        listing(f"list, deep page ({deep})", {}, page=deep),
        listing("filter: open statuses", {"status": list(OPEN_STATUSES)}),
        listing("filter: severity critical", {"severity": [Severity.CRITICAL]}),
        listing("filter: lead", {"leadId": [t.lead_id]}),
        listing("filter: reporter", {"reporterId": [t.reporter_id]}),
        listing("filter: dataset", {"datasetId": [t.dataset_id]}),
        listing("filters combined", t.combined),
        listing(f'search, common words "{COMMON_SEARCH}"', {"search": COMMON_SEARCH}),
        listing(f'search, rare words "{RARE_SEARCH}"', {"search": RARE_SEARCH}),
        listing("list as a member, first page", {}, as_member=True),
        listing("filters combined as a member", t.combined, as_member=True),
        Operation(
            name="counts per status (service call)",
            floor_path="/bench/floor/incident-counts",
            hand=lambda cursor: queries.counts_per_status(cursor, admin, queries.ListQuery()),
            service=lambda: _status_counts(t.admin),
        ),
        Operation(
            name="incident (API)",
            path=f"/api/v1/incidents/{t.incident_id}",
            floor_path=f"/bench/floor/incidents/{t.incident_id}",
            hand=lambda cursor: queries.incident(cursor, admin, t.incident_id),
        ),
        Operation(
            name="check results, a year (API)",
            path=f"/api/v1/checks/{t.check_id}/results",
            params=[("size", 366)],
            floor_path=f"/bench/floor/checks/{t.check_id}/results",
            hand=lambda cursor: queries.check_results(cursor, admin, t.check_id, 366),
        ),
        Operation(
            name="web: incidents page",
            path="/incidents/",
            web=True,
            floor_path="/bench/floor/web/incidents",
            hand=lambda cursor: queries.incidents_page(cursor, admin),
        ),
        Operation(
            name="web: dataset Incidents tab",
            path=f"/datasets/{t.dataset_id}/incidents",
            web=True,
            floor_path=f"/bench/floor/web/datasets/{t.dataset_id}/incidents",
            hand=lambda cursor: queries.dataset_incidents_page(cursor, admin, t.dataset_id),
        ),
        Operation(
            name="web: incident page",
            path=f"/incidents/{t.incident_number}",
            web=True,
            floor_path=f"/bench/floor/web/incidents/{t.incident_number}",
            hand=lambda cursor: queries.incident_page(cursor, admin, t.incident_number),
        ),
        Operation(
            name="web: check page (a year of results)",
            path=f"/checks/{t.check_id}",
            web=True,
            floor_path=f"/bench/floor/web/checks/{t.check_id}",
            hand=lambda cursor: queries.check_page(cursor, admin, t.check_id),
        ),
        Operation(
            name="web: home page",
            path="/",
            web=True,
            floor_path="/bench/floor/web/home",
            hand=lambda cursor: queries.home_page(cursor, admin),
        ),
        Operation(
            name="web: home page as a member",
            path="/",
            web=True,
            as_member=True,
            floor_path="/bench/floor/web/home",
            hand=lambda cursor: queries.home_page(cursor, member),
        ),
    ]
    if cursor_page is not None:
        ops.insert(2, cursor_page)
    return ops + write_operations(t, creds)


def _status_counts(admin: User) -> Any:
    """Counts per status as the Incidents page gets them: from the status counters where Quell has
    them (issue 6), else with the GROUP BY of the code before them."""
    filters = incident_queries.IncidentFilters()
    counted = getattr(incident_services, "status_counts", None)
    if counted is not None:
        return counted(filters, by=admin)
    return incident_queries.count_by(incident_queries.list_incidents(filters, by=admin), "status")


def deep_cursor_page(t: Targets, creds: Credentials, deep: int) -> Operation | None:
    """The deep page again, reached with the keyset cursor the page before it hands out.

    None when the API has no cursor (nextCursor) to follow."""
    client = Client(HTTP_HOST="127.0.0.1")
    before = client.get(
        "/api/v1/incidents",
        {"size": SIZE, "page": deep - 1},
        HTTP_AUTHORIZATION=_auth_header(creds.api[False]),
    )
    cursor = before.json().get("nextCursor") if before.status_code == 200 else None
    if not cursor:
        return None
    last = Incident.objects.order_by("-created_at", "-id").values_list("created_at", "id")[deep * SIZE - 1]
    admin = queries.Caller(t.admin.pk, True)
    return Operation(
        name=f"list, deep page ({deep}) by cursor",
        path="/api/v1/incidents",
        params=[("size", SIZE), ("cursor", cursor)],
        floor_path="/bench/floor/incidents/after",
        floor_params=[("size", SIZE), ("afterCreated", last[0].isoformat()), ("afterId", last[1])],
        hand=lambda c: queries.incident_list_after(c, admin, queries.ListQuery(size=SIZE), last),
    )


SODA_CHECKS = 1000
SODA_TABLES = 20


def soda_scan(n: int) -> dict[str, Any]:
    """A Soda Core 3.x scan of 1,000 checks over 20 tables, as sodaCoreInsertScanResults sends it.

    Every call is a new night (so a new scan, not a repeat the idempotency key would swallow); one
    check in ten fails."""
    at = (dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=n + 10_000)).isoformat()
    checks: list[dict[str, Any]] = []
    for c in range(SODA_CHECKS):
        table = f"bench_table_{c % SODA_TABLES}"
        identity = f"bench-{c:04d}"
        checks.append(
            {
                "identity": identity,
                "identities": {"v1": identity, "v2": identity, "v3": identity},
                "name": f"row_count > {c}",
                "type": "generic",
                "definition": f"checks for {table}:\n  row_count > {c}",
                "resourceAttributes": [],
                "location": {"filePath": "checks.yml", "line": c + 2, "col": 5},
                "dataSource": "bench_soda",
                "table": table,
                "column": None,
                "metrics": [],
                "outcome": "fail" if (c + n) % 10 == 0 else "pass",
                "diagnostics": {"blocks": [], "value": c + n},
                "source": "soda-core",
            }
        )
    return {
        "type": "sodaCoreInsertScanResults",
        "definitionName": "bench nightly",
        "defaultDataSource": "bench_soda",
        "dataTimestamp": at,
        "scanStartTimestamp": at,
        "scanEndTimestamp": at,
        "hasErrors": False,
        "hasWarnings": False,
        "hasFailures": True,
        "metrics": [],
        "checks": checks,
        "queries": [],
        "logs": [],
    }


def write_operations(t: Targets, creds: Credentials) -> list[Operation]:
    """Creating incidents, attaching results and ingesting a Soda scan, end to end and on the floor.

    Quell and the floor draw from separate halves of the failing results and attach to separate
    incidents, so neither finds its work already done by the other."""
    pool = t.failing_result_ids
    half = len(pool) // 2
    quell_pool, floor_pool = pool[:half], pool[half:]
    # Fresh incidents to attach to, made through the same service the API calls. The pools' results
    # may be in loadgen's open incidents, and every create below reuses them: each is a separate
    # incident on purpose (allowDuplicate), so the guard's refusal is not what is measured.
    target = incident_services.create_incident(
        by=t.admin,
        title="Bench: results attached here",
        check_result_ids=[quell_pool[0]],
        allow_duplicate=True,
    )
    floor_target = incident_services.create_incident(
        by=t.admin,
        title="Bench: results attached here (floor)",
        check_result_ids=[floor_pool[0]],
        allow_duplicate=True,
    )
    admin = queries.Caller(t.admin.pk, True)

    # The last result of each half is kept for the statement capture and the hand-written SQL, which
    # roll back, so they always find it unattached.
    def attach_body(chosen: list[int]) -> Callable[[int], dict[str, Any]]:
        return lambda n: {"checkResultIds": [chosen[1 + n % (len(chosen) - 2)]]}

    def create_body(chosen: list[int]) -> Callable[[int], dict[str, Any]]:
        return lambda n: {
            "title": f"Bench incident {n}",
            "checkResultIds": [chosen[n % len(chosen)]],
            "allowDuplicate": True,
        }

    token = creds.soda_token

    def soda_body(offset: int) -> Callable[[int], dict[str, Any]]:
        return lambda n: {**soda_scan(n + offset), "token": token}

    return [
        Operation(
            name="attach a result (API)",
            method="POST",
            path=f"/api/v1/incidents/{target.pk}/checkResults",
            body=attach_body(quell_pool),
            floor_path=f"/bench/floor/incidents/{floor_target.pk}/checkResults",
            floor_body=attach_body(floor_pool),
            capture_body={"checkResultIds": [quell_pool[-1]]},
            hand=lambda c: queries.attach_results(c, admin, floor_target.pk, [floor_pool[-1]]),
        ),
        Operation(
            name="create an incident (API)",
            method="POST",
            path="/api/v1/incidents",
            body=create_body(quell_pool),
            floor_path="/bench/floor/incidents/create",
            floor_body=create_body(floor_pool),
            capture_body={
                "title": "Bench capture",
                "checkResultIds": [quell_pool[-1]],
                "allowDuplicate": True,
            },
            hand=lambda c: queries.create_incident(c, admin, "Bench incident", [floor_pool[-1]]),
        ),
        Operation(
            name="ingest a Soda scan of 1,000 checks",
            method="POST",
            path="/api/command",
            soda=True,
            body=soda_body(0),
            floor_path="/bench/floor/soda/command",
            floor_body=soda_body(500_000),
            capture_body={**soda_scan(999_998), "token": token},
            hand=lambda c: queries.ingest_soda_scan(c, admin, soda_scan(999_999)),
            repeats=5,
        ),
    ]


# --- Running a server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVERS = ("serve", "runserver")


@contextmanager
def server(log: Path | None = None, kind: str = "serve") -> Iterator[str]:
    """A Quell web server process on the same database as this one, with the floor endpoint on.

    `serve` is the production server (gunicorn, `quell serve`); `runserver` is Django's threaded
    development server."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        # The test database of a pytest run is a different file from the configured one; point at it.
        env["QUELL_DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["QUELL_DATABASE_URL"] = (
            f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        if db.get("PASSWORD"):
            env["QUELL_DATABASE_URL"] = env["QUELL_DATABASE_URL"].replace(
                f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@"
            )
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        # The server imports the bench package, which is not installed: it is found in the checkout.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        QUELL_BASE_URL=base,
        QUELL_DEBUG="0",
        QUELL_LOG_LEVEL="WARNING",
    )
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    # The command is this interpreter running Quell, with no outside input in it.
    if kind == "serve":
        command = ["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    elif kind == "runserver":
        command = ["runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"]
    else:
        raise ValueError(f"server must be one of {SERVERS}, not {kind!r}")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "quell", *command],
        env=env,
        stdout=out,
        stderr=out,
    )
    try:
        # Generous: `quell serve` first collects static files, and the machine may be busy.
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(f"{base}/login/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"quell {kind} did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            # A worker stuck in a pathological request does not stop on its own.
            proc.kill()
            proc.wait(30)
        if log and not isinstance(out, int):
            out.close()


# --- Measuring ------------------------------------------------------------------------------------


@dataclass
class Credentials:
    api: dict[bool, tuple[str, str]]  # as_member -> (key id, secret)
    sessions: dict[bool, str]  # as_member -> the session cookie of a signed-in browser
    soda_token: str

    @property
    def session_cookie(self) -> str:
        """The admin's session."""
        return self.sessions[False]


def credentials(t: Targets) -> Credentials:
    from quell.ingest import services as ingest_services

    keys = {}
    sessions = {}
    for as_member, user in ((False, t.admin), (True, t.member)):
        key, secret = ApiKey.issue(user, name="bench")
        keys[as_member] = (key.key_id, secret)
        client = Client()
        client.force_login(user)
        sessions[as_member] = client.cookies[settings.SESSION_COOKIE_NAME].value
    # Soda Core logs in with an API key and sends the token it gets in every later body.
    token = ingest_services.log_in(*keys[False])
    return Credentials(api=keys, sessions=sessions, soda_token=token)


def _auth_header(key: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{key[0]}:{key[1]}".encode()).decode()


def _timed(call: Callable[[int], None], repeats: int, warmup: int, budget: float | None = None) -> Stats:
    """`repeats` timed calls after `warmup` untimed ones; with a budget (seconds), stop early once
    it is spent and at least 5 calls were timed, so a pathological case cannot take hours."""
    for n in range(warmup):
        call(-1 - n)
    seconds: list[float] = []
    began = time.perf_counter()
    for n in range(repeats):
        started = time.perf_counter()
        call(n)
        seconds.append(time.perf_counter() - started)
        if budget is not None and len(seconds) >= 5 and time.perf_counter() - began > budget:
            break
    return Stats.of(seconds)


def _http(
    client: httpx.Client,
    op: Operation,
    path: str,
    creds: Credentials,
    params: Params | None = None,
    body: Callable[[int], dict[str, Any]] | None = None,
) -> Callable[[int], None]:
    headers = {} if op.web or op.soda else {"Authorization": _auth_header(creds.api[op.as_member])}
    params = op.params if params is None else params
    body = body or op.body

    def call(n: int) -> None:
        payload = body(n + 1000) if body else None
        response = client.request(op.method, path, params=params, json=payload, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(
                f"{op.name}: {op.method} {path} answered {response.status_code}: {response.text[:300]}"
            )

    return call


AUTH_TABLES = ("accounts_apikey", "django_session", "ingest_sodatoken")
# Transaction control is replayed by the replaying transaction itself.
CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")


def _is_auth(sql: str) -> bool:
    return any(table in sql for table in AUTH_TABLES)


def _in_process(op: Operation, creds: Credentials) -> int:
    client = Client(HTTP_HOST="127.0.0.1")
    if op.web:
        client.cookies[settings.SESSION_COOKIE_NAME] = creds.sessions[op.as_member]
        return int(client.get(op.path, dict(_grouped(op.params))).status_code)
    if op.writes:
        headers = {} if op.soda else {"Authorization": _auth_header(creds.api[op.as_member])}
        return int(
            client.post(
                op.path, json.dumps(op.capture_body), content_type="application/json", headers=headers
            ).status_code
        )
    return int(
        client.get(
            op.path, dict(_grouped(op.params)), HTTP_AUTHORIZATION=_auth_header(creds.api[op.as_member])
        ).status_code
    )


# A statement to replay: SQL with its values in it, or (for executemany) SQL and its parameter sets.
Statement = str | tuple[str, list[Any]]
_MANY = re.compile(r"^\d+ times: ")


def quell_statements(op: Operation, creds: Credentials) -> list[Statement]:
    """The statements Quell issues for the operation, captured in this process.

    Reads keep their SELECTs. A write is captured inside a transaction that is then rolled back, so
    capturing changes nothing; every statement but authentication's and transaction control is kept."""
    # Django logs an executemany as "N times: SQL" without its values; keep those to replay it.
    many: list[tuple[str, list[Any]]] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, is_many: bool, context: Any) -> Any:
        if is_many:
            params = list(params)
            many.append((sql, params))
        return execute(sql, params, is_many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(record):
        if op.service:
            op.service()
        elif op.writes:
            with transaction.atomic():
                status = _in_process(op, creds)
                transaction.set_rollback(True)
            if status >= 300:
                raise RuntimeError(f"{op.name}: in-process request answered {status}")
        else:
            status = _in_process(op, creds)
            if status != 200:
                raise RuntimeError(f"{op.name}: in-process request answered {status}")
    kept: list[Statement] = []
    pending_many = iter(many)
    for q in captured.captured_queries:
        sql = q["sql"].lstrip()
        if _MANY.match(sql):
            statement, param_sets = next(pending_many)
            if op.writes:
                kept.append((statement, param_sets))
            continue
        if _is_auth(sql) or sql.upper().startswith(CONTROL):
            continue
        if op.writes or sql.upper().startswith("SELECT"):
            kept.append(sql)
    return kept


def _grouped(params: Params) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(str(value))
    return grouped


def _replay(statements: list[Statement], writes: bool) -> Callable[[int], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                if isinstance(statement, tuple):
                    cursor.executemany(*statement)
                    continue
                cursor.execute(statement)
                if cursor.description is not None:
                    cursor.fetchall()

    def call(n: int) -> None:
        if not writes:
            run()
            return
        with transaction.atomic():
            run()
            transaction.set_rollback(True)

    return call


def _hand(op: Operation) -> Callable[[int], None]:
    assert op.hand is not None
    hand = op.hand

    def call(n: int) -> None:
        if op.writes:
            # The same single transaction as the floor endpoint's, rolled back so the next call
            # finds the same state.
            with transaction.atomic(), connection.cursor() as cursor:
                hand(cursor)
                transaction.set_rollback(True)
        else:
            with connection.cursor() as cursor:
                hand(cursor)

    return call


def _attempt(
    m: Measurement, name: str, call: Callable[[int], None], repeats: int, warmup: int, budget: float | None
) -> Stats | None:
    """A timed figure over HTTP; one pathological figure (a request past the timeout, an error
    answer) is reported as failed instead of costing the whole run."""
    try:
        return _timed(call, repeats, warmup, budget)
    except (httpx.HTTPError, RuntimeError) as error:
        m.failed[name] = f"{type(error).__name__}: {str(error)[:200]}"
        return None


@contextmanager
def statement_timeout(seconds: float) -> Iterator[Callable[[], None]]:
    """Abort statements of this connection that run past `seconds` (raising DatabaseError).

    Yields the function that starts the clock for the next call: PostgreSQL's statement_timeout
    needs none; on SQLite a progress handler interrupts the statement once the deadline passed."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [str(int(seconds * 1000))])
        try:
            yield lambda: None
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', '0', false)")
        return
    connection.ensure_connection()
    raw = connection.connection
    deadline = [time.monotonic() + seconds]

    def rearm() -> None:
        deadline[0] = time.monotonic() + seconds

    def check() -> int:
        # A non-zero answer makes SQLite interrupt the running statement.
        return 1 if time.monotonic() > deadline[0] else 0

    raw.set_progress_handler(check, 100_000)
    try:
        yield rearm
    finally:
        raw.set_progress_handler(None, 0)


def _attempt_sql(
    m: Measurement,
    name: str,
    call: Callable[[int], None],
    repeats: int,
    warmup: int,
    budget: float | None,
    timeout: float,
) -> Stats | None:
    """A timed SQL figure; a statement past `timeout` seconds is reported as failed."""
    try:
        with statement_timeout(timeout) as rearm:

            def guarded(n: int) -> None:
                rearm()
                call(n)

            return _timed(guarded, repeats, warmup, budget)
    except DatabaseError as error:
        m.failed[name] = f"{type(error).__name__}: {str(error)[:200]}"
        return None


def measure(
    ops: list[Operation],
    base_url: str,
    creds: Credentials,
    *,
    repeats: int = 30,
    warmup: int = 3,
    budget: float | None = None,
    progress: Callable[[str], None] | None = None,
    request_timeout: float = 300,
) -> list[Measurement]:
    results = []

    def signed_in(as_member: bool) -> httpx.Client:
        cookies = {settings.SESSION_COOKIE_NAME: creds.sessions[as_member]}
        return httpx.Client(base_url=base_url, timeout=request_timeout, cookies=cookies)

    with (
        httpx.Client(base_url=base_url, timeout=request_timeout) as client,
        signed_in(False) as browser,
        signed_in(True) as member_browser,
    ):
        for op in ops:
            if progress:
                progress(op.name)
            n = op.repeats or repeats
            w = min(warmup, n)
            m = Measurement(op.name)
            http = (member_browser if op.as_member else browser) if op.web else client

            if op.path:
                call = _http(http, op, op.path, creds)
                m.end_to_end = _attempt(m, "end to end", call, n, w, budget)
            if op.floor_path:
                call = _http(http, op, op.floor_path, creds, op.floor_params, op.floor_body)
                m.floor = _attempt(m, "floor", call, n, w, budget)
            if op.method == "GET" or op.capture_body is not None:
                statements = quell_statements(op, creds)
                m.quell_queries = len(statements)
                m.quell_sql = _attempt_sql(
                    m, "Quell SQL", _replay(statements, op.writes), n, w, budget, request_timeout
                )
            if op.hand:
                m.hand_sql = _attempt_sql(m, "hand SQL", _hand(op), n, w, budget, request_timeout)
            results.append(m)
    return results


# --- Reporting ------------------------------------------------------------------------------------


def _ms(stats: Stats | None) -> str:
    return "—" if stats is None else f"{stats.median_ms:.1f} / {stats.p95_ms:.1f}"


def _ratio(a: Stats | None, b: Stats | None) -> str:
    if a is None or b is None or b.median_ms <= 0:
        return "—"
    return f"{a.median_ms / b.median_ms:.2f}"


def as_json(results: list[Measurement]) -> list[dict[str, Any]]:
    """The measurements as plain data, for plots and for comparing runs."""

    def stats(value: Stats | None) -> dict[str, float] | None:
        return (
            None
            if value is None
            else {"median_ms": value.median_ms, "p95_ms": value.p95_ms, "n": value.samples}
        )

    return [
        {
            "operation": m.operation,
            "end_to_end": stats(m.end_to_end),
            "floor": stats(m.floor),
            "quell_sql": stats(m.quell_sql),
            "quell_queries": m.quell_queries,
            "hand_sql": stats(m.hand_sql),
            "failed": m.failed,
        }
        for m in results
    ]


def markdown(results: list[Measurement]) -> str:
    lines = [
        "| Operation | End to end ms (median / p95) | Floor ms | E2E ÷ floor | Quell SQL ms (queries) "
        "| Hand SQL ms | Quell ÷ hand |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        queries_note = f" ({m.quell_queries})" if m.quell_queries is not None else ""
        if m.failed:
            queries_note += " — failed: " + "; ".join(f"{k}: {v[:80]}" for k, v in m.failed.items())
        lines.append(
            f"| {m.operation} | {_ms(m.end_to_end)} | {_ms(m.floor)} | {_ratio(m.end_to_end, m.floor)} "
            f"| {_ms(m.quell_sql)}{queries_note} | {_ms(m.hand_sql)} | {_ratio(m.quell_sql, m.hand_sql)} |"
        )
    return "\n".join(lines) + "\n"
