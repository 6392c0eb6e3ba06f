"""Quell under a mixed load, as deployed: real web and worker processes, locust, a webhook receiver.

bench/load.py runs in its own process on a database of its own (a file on SQLite; a database made
next to the suite's on PostgreSQL), at a small scale and for a bounded time. The report it writes is
what is checked here: counts and outcomes, never how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from bench.loadtest import LoadReport, Receiver, judge, scan_logs
from tests.integrations.conftest import expected_signature

REPO = Path(__file__).resolve().parents[1]
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
# Production shape on PostgreSQL; the smaller one SQLite is meant for.
WEB_PROCESSES = WORKERS = 2 if ON_POSTGRES else 1
RUN_SECONDS = 25
# Far above what the run needs; only there so a hang fails the test instead of the whole suite.
HANG_SECONDS = 600

# Every kind of request the load makes: reads, filters, search, writes, ingestion and web pages.
ROUTES = [
    "GET /api/v1/incidents first page",
    "GET /api/v1/incidents deep page",
    "GET /api/v1/incidents filter status",
    "GET /api/v1/incidents filter severity",
    "GET /api/v1/incidents filter lead",
    "GET /api/v1/incidents filter reporter",
    "GET /api/v1/incidents filter dataset",
    "GET /api/v1/incidents search",
    "GET /api/v1/incidents/{id}",
    "GET /api/v1/incidents/{id}/timeline",
    "GET /api/v1/checks/{id}/results",
    "POST /api/v1/incidents",
    "PATCH /api/v1/incidents/{id}",
    "POST /api/v1/incidents/{id}/comments",
    "POST /api/v1/incidents/{id}/checkResults",
    "POST /api/v1/checkResults",
    "POST /api/command login",
    "POST /api/scan/upload",
    "POST /api/command sodaCoreInsertScanResults",
    "POST /api/v1/imports/soda",
    "POST /login/",
    "GET /incidents/",
    "GET /incidents/{number}",
    "POST /incidents/{number}/edit",
    "POST /incidents/{number}/comments",
    "GET /datasets/{id}",
    "GET /datasets/{id}/incidents",
    "GET /checks/{id}",
]


def _admin_connection() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load")


@pytest.fixture(scope="module")
def load_database(workdir: Path) -> Iterator[str]:
    """A database for the load test alone, removed afterwards."""
    if not ON_POSTGRES:
        yield f"sqlite:///{workdir / 'load.sqlite3'}"
        return
    db = settings.DATABASES["default"]
    # Beside the suite's test_<name> (whether or not pytest-django has renamed it yet): test_<name>_load.
    base = db["NAME"] if db["NAME"].startswith("test_") else f"test_{db['NAME']}"
    name = f"{base}_load"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    try:
        yield f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_load(database_url: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    report = tmp_path / "report.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUELL_DATABASE")}
    env["QUELL_DATA_DIR"] = str(tmp_path / "data")
    # `quell serve` compresses every static file when they changed; kept between runs, that is done once.
    env["QUELL_STATIC_ROOT"] = str(REPO / ".cache" / "load-test-static")
    command = [
        sys.executable,
        str(REPO / "bench" / "load.py"),
        "--database-url",
        database_url,
        "--web-processes",
        str(WEB_PROCESSES),
        "--workers",
        str(WORKERS),
        "--users",
        "12",
        "--spawn-rate",
        "12",
        "--think-seconds",
        "0.05",
        "0.4",
        "--duration",
        f"{RUN_SECONDS}s",
        "--incidents",
        "500",
        "--days",
        "14",
        "--drain-seconds",
        "120",
        "--logs",
        str(tmp_path / "logs"),
        "--json",
        str(report),
    ]
    # Its own session, so a hang can be ended with every server and worker it started.
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = child.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"the load test hung:\n{output.decode(errors='replace')[-5000:]}")
    text = output.decode(errors="replace")
    assert report.exists(), f"no report; the runner said:\n{text[-5000:]}"
    return json.loads(report.read_text()), text


@pytest.fixture(scope="module")
def loaded(load_database: str, workdir: Path) -> tuple[dict[str, Any], str]:
    """One run of the load, which every test below reads."""
    return run_load(load_database, workdir)


def test_quell_under_load_serves_every_request_without_an_error(loaded: tuple[dict[str, Any], str]) -> None:
    report, output = loaded

    assert report["web_processes"] == WEB_PROCESSES
    assert report["workers"] == WORKERS
    assert report["requests"] > 0
    assert report["failures"] == 0, report["failure_samples"]
    served = {route["name"]: route["requests"] for route in report["routes"]}
    assert {route: served.get(route, 0) for route in ROUTES if not served.get(route)} == {}
    assert report["ok"], output[-5000:]


def test_every_webhook_the_load_caused_is_delivered_signed_and_once_per_id(
    loaded: tuple[dict[str, Any], str],
) -> None:
    report, _ = loaded

    assert set(report["events_by_type"]) == {"incidentCreated", "incidentUpdated", "checkEvaluation"}
    assert report["events_expected"] > 0
    assert report["events_delivered"] == report["events_expected"]
    assert report["events_missing"] == []
    assert report["events_without_delivery"] == 0
    assert report["webhook_unexpected"] == 0
    assert report["webhook_bad_signatures"] == 0
    assert report["deliveries_unfinished"] == report["deliveries_failed"] == 0
    assert report["incidents_created"] == report["events_by_type"]["incidentCreated"]


def test_no_database_is_locked_error_or_server_error_reaches_anyone(
    loaded: tuple[dict[str, Any], str],
) -> None:
    report, _ = loaded

    assert set(report["locked_errors"]) >= {"web", "worker-1"}
    assert sum(report["locked_errors"].values()) == 0
    assert sum(report["server_errors"].values()) == 0
    assert sum(report["tracebacks"].values()) == 0


def test_the_report_fails_on_a_locked_database_a_server_error_or_a_lost_webhook() -> None:
    report = LoadReport(
        database="sqlite", web_processes=1, workers=1, users=1, duration="1s", server_command="quell serve"
    )
    report.requests = 10
    report.events_expected, report.events_delivered = 3, 2
    report.events_missing = ["msg_lost"]
    report.events_by_type = {"incidentCreated": 1}
    report.incidents_created = 1
    scan_logs(
        report,
        {
            "web": 'Internal Server Error: /api/v1/incidents\n{"message": "GET /x 503", "status": 503}\n'
            "django.db.utils.OperationalError: database is locked\n",
            "worker-1": "Traceback (most recent call last):\n",
        },
    )

    judge(report)

    assert report.server_errors == {"web": 2, "worker-1": 0}
    assert report.locked_errors == {"web": 1, "worker-1": 0}
    assert not report.ok
    assert report.errors == [
        "1 events never reached the receiver",
        '1 "database is locked" in the web log',
        "2 5xx answers logged in the web log",
        "1 tracebacks in the worker-1 log",
    ]


def test_the_receiver_tells_a_forged_signature_from_a_real_one() -> None:
    receiver = Receiver()
    receiver.secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"id": "msg_1"}'
    receiver.record(
        "msg_1", "1700000000", expected_signature(receiver.secret, "msg_1", "1700000000", body), body
    )
    receiver.record("msg_2", "1700000000", "v1,Zm9yZ2Vk", b'{"id": "msg_2"}')
    receiver.server.server_close()

    assert receiver.seen == {"msg_1": 1, "msg_2": 1}
    assert receiver.bad_signatures == ["msg_2"]
