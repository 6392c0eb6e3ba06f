"""Time Quell's hot operations three ways: end to end over HTTP, the floor endpoint, and the SQL alone.

- End to end: a real `quell runserver` process, called over HTTP with an API key (or a session for
  web pages), as a client would.
- Floor: the same server answering the same page from quell.bench.queries (the hand-written SQL),
  serialised straight to JSON; mounted only because the harness starts the server with
  QUELL_BENCH_FLOOR=1.
- Database part: the statements Quell issues for the request, captured in this process with
  CaptureQueriesContext and re-executed raw, against the hand-written queries on the same database.
  Authentication's own statements (API key, session) and writes are left out of the capture.

Only timings are reported; nothing here asserts how fast anything must be.
"""

from __future__ import annotations

import base64
import os
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
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import ApiKey, User
from quell.bench import queries
from quell.bench.loadgen import COMMON_SEARCH, RARE_SEARCH
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult
from quell.incidents import services as incident_services
from quell.incidents.models import OPEN_STATUSES, Incident, IncidentDataset, Severity

Params = list[tuple[str, str | int | float | bool | None]]


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
    hand: Callable[[Any], Any] | None = None
    # When the operation is a service call with no page of its own, the call to capture instead.
    service: Callable[[], Any] | None = None
    repeats: int | None = None


@dataclass
class Measurement:
    operation: str
    end_to_end: Stats | None = None
    floor: Stats | None = None
    quell_sql: Stats | None = None
    quell_queries: int | None = None
    hand_sql: Stats | None = None


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
    lead_id = Incident.objects.values("lead").annotate(n=Count("id")).order_by("-n")[0]["lead"]
    reporter_id = Incident.objects.values("reporter").annotate(n=Count("id")).order_by("-n")[0]["reporter"]
    dataset_id = (
        IncidentDataset.objects.values("dataset").annotate(n=Count("id")).order_by("-n")[0]["dataset"]
    )
    open_one = (
        Incident.objects.filter(status__in=OPEN_STATUSES).order_by("-created_at").first()
        or Incident.objects.order_by("-created_at").first()
    )
    assert open_one is not None
    one_dataset = IncidentDataset.objects.filter(incident=open_one).values_list("dataset_id", flat=True)[0]
    busiest = Incident.objects.annotate(n=Count("links")).order_by("-n", "-created_at").first()
    assert busiest is not None
    check = Check.objects.order_by("-last_result_at", "pk").first()
    assert check is not None
    failing = list(
        CheckResult.objects.filter(outcome__in=FAILING_OUTCOMES)
        .order_by("-id")
        .values_list("id", flat=True)[:500]
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


def operations(t: Targets) -> list[Operation]:
    admin = queries.Caller(t.admin.pk, True)
    member = queries.Caller(t.member.pk, False)
    deep = max(0, (t.total // SIZE) // 2)

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
            service=lambda: incident_services.count_by(
                incident_services.list_incidents(incident_services.IncidentFilters(), by=t.admin), "status"
            ),
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
        Operation(name="web: incidents page", path="/incidents/", web=True),
        Operation(name="web: dataset Incidents tab", path=f"/datasets/{t.dataset_id}/incidents", web=True),
        Operation(name="web: incident page", path=f"/incidents/{t.incident_number}", web=True),
        Operation(name="web: check page", path=f"/checks/{t.check_id}", web=True),
    ]
    pool = t.failing_result_ids
    # A fresh incident to attach to, made through the same service the API calls.
    target = incident_services.create_incident(
        by=t.admin, title="Bench: results attached here", check_result_ids=[pool[0]]
    )
    ops += [
        Operation(
            name="attach a result (API)",
            method="POST",
            path=f"/api/v1/incidents/{target.pk}/checkResults",
            body=lambda n: {"checkResultIds": [pool[1 + n % (len(pool) - 1)]]},
        ),
        Operation(
            name="create an incident (API)",
            method="POST",
            path="/api/v1/incidents",
            body=lambda n: {"title": f"Bench incident {n}", "checkResultIds": [pool[n % len(pool)]]},
        ),
        Operation(
            name="push 1,000 results (API)",
            method="POST",
            path="/api/v1/checkResults",
            body=lambda n: {
                "dataTimestamp": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z",
                "results": [
                    {
                        "dataSource": "bench_source",
                        "dataset": f"bench.table_{c % 20}",
                        "check": {"name": f"bench check {c}", "identity": f"bench/{c}"},
                        "outcome": "pass" if c % 10 else "fail",
                        "value": c,
                    }
                    for c in range(1000)
                ],
            },
            repeats=5,
        ),
    ]
    return ops


# --- Running a server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(log: Path | None = None) -> Iterator[str]:
    """A `quell runserver` process on the same database as this one, with the floor endpoint on."""
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
    env.update(QUELL_BENCH_FLOOR="1", QUELL_BASE_URL=base, QUELL_DEBUG="0", QUELL_LOG_LEVEL="WARNING")
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    # The command is this interpreter running Quell, with no outside input in it.
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "quell", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        env=env,
        stdout=out,
        stderr=out,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/login/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"quell runserver did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        if log and not isinstance(out, int):
            out.close()


# --- Measuring ------------------------------------------------------------------------------------


@dataclass
class Credentials:
    api: dict[bool, tuple[str, str]]  # as_member -> (key id, secret)
    session_cookie: str


def credentials(t: Targets) -> Credentials:
    keys = {}
    for as_member, user in ((False, t.admin), (True, t.member)):
        key, secret = ApiKey.issue(user, name="bench")
        keys[as_member] = (key.key_id, secret)
    client = Client()
    client.force_login(t.admin)
    return Credentials(api=keys, session_cookie=client.cookies[settings.SESSION_COOKIE_NAME].value)


def _auth_header(key: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{key[0]}:{key[1]}".encode()).decode()


def _timed(call: Callable[[int], None], repeats: int, warmup: int) -> Stats:
    for n in range(warmup):
        call(-1 - n)
    seconds = []
    for n in range(repeats):
        started = time.perf_counter()
        call(n)
        seconds.append(time.perf_counter() - started)
    return Stats.of(seconds)


def _http(client: httpx.Client, op: Operation, path: str, creds: Credentials) -> Callable[[int], None]:
    headers = {} if op.web else {"Authorization": _auth_header(creds.api[op.as_member])}

    def call(n: int) -> None:
        body = op.body(n + 1000) if op.body else None
        response = client.request(op.method, path, params=op.params, json=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(
                f"{op.name}: {op.method} {path} answered {response.status_code}: {response.text[:300]}"
            )

    return call


def _is_auth(sql: str) -> bool:
    return "accounts_apikey" in sql or "django_session" in sql


def quell_statements(op: Operation, creds: Credentials) -> list[str]:
    """The read statements Quell issues for the operation, captured in this process."""
    with CaptureQueriesContext(connection) as captured:
        if op.service:
            op.service()
        else:
            client = Client(HTTP_HOST="127.0.0.1")
            if op.web:
                client.cookies[settings.SESSION_COOKIE_NAME] = creds.session_cookie
                response = client.get(op.path, dict(_grouped(op.params)))
            else:
                response = client.get(
                    op.path,
                    dict(_grouped(op.params)),
                    HTTP_AUTHORIZATION=_auth_header(creds.api[op.as_member]),
                )
            if response.status_code != 200:
                raise RuntimeError(f"{op.name}: in-process request answered {response.status_code}")
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT") and not _is_auth(q["sql"])
    ]


def _grouped(params: Params) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(str(value))
    return grouped


def _replay(statements: list[str]) -> Callable[[int], None]:
    def call(n: int) -> None:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                cursor.fetchall()

    return call


def _hand(op: Operation) -> Callable[[int], None]:
    assert op.hand is not None
    hand = op.hand

    def call(n: int) -> None:
        with connection.cursor() as cursor:
            hand(cursor)

    return call


def measure(
    ops: list[Operation], base_url: str, creds: Credentials, *, repeats: int = 30, warmup: int = 3
) -> list[Measurement]:
    results = []
    session = {settings.SESSION_COOKIE_NAME: creds.session_cookie}
    with (
        httpx.Client(base_url=base_url, timeout=120) as client,
        httpx.Client(base_url=base_url, timeout=120, cookies=session) as browser,
    ):
        for op in ops:
            n = op.repeats or repeats
            m = Measurement(op.name)
            if op.path:
                m.end_to_end = _timed(
                    _http(browser if op.web else client, op, op.path, creds), n, min(warmup, n)
                )
            if op.floor_path:
                floor_op = Operation(
                    name=op.name, path=op.floor_path, params=op.params, as_member=op.as_member
                )
                m.floor = _timed(_http(client, floor_op, op.floor_path, creds), n, warmup)
            if op.method == "GET":
                statements = quell_statements(op, creds)
                m.quell_queries = len(statements)
                m.quell_sql = _timed(_replay(statements), n, warmup)
            if op.hand:
                m.hand_sql = _timed(_hand(op), n, warmup)
            results.append(m)
    return results


# --- Reporting ------------------------------------------------------------------------------------


def _ms(stats: Stats | None) -> str:
    return "—" if stats is None else f"{stats.median_ms:.1f} / {stats.p95_ms:.1f}"


def _ratio(a: Stats | None, b: Stats | None) -> str:
    if a is None or b is None or b.median_ms <= 0:
        return "—"
    return f"{a.median_ms / b.median_ms:.2f}"


def markdown(results: list[Measurement]) -> str:
    lines = [
        "| Operation | End to end ms (median / p95) | Floor ms | E2E ÷ floor | Quell SQL ms (queries) "
        "| Hand SQL ms | Quell ÷ hand |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        queries_note = f" ({m.quell_queries})" if m.quell_queries is not None else ""
        lines.append(
            f"| {m.operation} | {_ms(m.end_to_end)} | {_ms(m.floor)} | {_ratio(m.end_to_end, m.floor)} "
            f"| {_ms(m.quell_sql)}{queries_note} | {_ms(m.hand_sql)} | {_ratio(m.quell_sql, m.hand_sql)} |"
        )
    return "\n".join(lines) + "\n"
