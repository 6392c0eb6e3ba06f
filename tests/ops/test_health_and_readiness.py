"""/healthz says the process is up; /readyz says whether it can do its job, naming what is missing."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import LazySettings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from quell.ops import health
from quell.ops.models import WorkerHeartbeat
from tests.ops.conftest import Process, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def probe(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def fresh_migration_check() -> Iterator[None]:
    # The live server shares this process's memory of "migrations applied".
    health.forget_migrations()
    yield
    health.forget_migrations()


def test_healthz_and_readyz_when_the_database_is_unreachable(start_web: Callable[..., Process]) -> None:
    web = start_web(QUELL_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{closed_port()}/quell")

    alive = httpx.get(f"{web.url}/healthz", timeout=30)
    ready = httpx.get(f"{web.url}/readyz", timeout=30)

    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
    assert ready.status_code == 503
    body = ready.json()
    assert body["code"] == "not_ready"
    assert body["failing"] == ["database", "migrations", "worker"]
    assert body["checks"]["database"] == {"ok": False, "message": "The database did not answer."}
    # The driver's error names the server and user; it goes to the log, not to an anonymous caller.
    assert "nobody" not in ready.text


def test_readyz_waits_for_a_worker_and_notices_when_it_stops(
    probe: httpx.Client, start_worker: Callable[..., Process], fresh_migration_check: None
) -> None:
    before = probe.get("/readyz")
    assert before.status_code == 503
    assert before.json()["failing"] == ["worker"]
    assert before.json()["checks"]["database"]["ok"] is True
    assert before.json()["checks"]["migrations"]["ok"] is True

    worker = start_worker()
    wait_until(lambda: probe.get("/readyz").status_code == 200, what="ready once the worker beats")
    ready = probe.get("/readyz").json()
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {"database", "migrations", "worker"}
    (row,) = WorkerHeartbeat.objects.all()
    assert row.pid == worker.popen.pid

    assert worker.stop() == 0
    assert not WorkerHeartbeat.objects.exists()
    after = probe.get("/readyz")
    assert after.status_code == 503
    assert after.json()["failing"] == ["worker"]


def test_a_worker_that_stopped_reporting_is_not_enough(probe: httpx.Client, settings: LazySettings) -> None:
    settings.READY_WORKER_SECONDS = 60
    stale = timezone.now() - timedelta(seconds=61)
    WorkerHeartbeat.objects.create(name="gone:1:1", hostname="gone", pid=1, started_at=stale, seen_at=stale)

    response = probe.get("/readyz")

    assert response.status_code == 503
    assert (
        response.json()["checks"]["worker"]["message"] == "No `quell worker` has reported in the last 60 s."
    )


def test_readyz_can_leave_out_the_worker_check(probe: httpx.Client, settings: LazySettings) -> None:
    settings.READY_WORKER_SECONDS = 0

    response = probe.get("/readyz")

    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "migrations"}


def test_readyz_is_503_while_a_migration_of_the_code_is_not_applied(
    probe: httpx.Client, settings: LazySettings, fresh_migration_check: None
) -> None:
    settings.READY_WORKER_SECONDS = 0
    # What a deploy whose new migration has not run yet looks like: the code's newest ops migration
    # is missing from the database's record of applied migrations.
    leaf = next(node for node in MigrationLoader(connection).graph.leaf_nodes() if node[0] == "ops")
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied(*leaf)
    try:
        pending = probe.get("/readyz")
    finally:
        recorder.record_applied(*leaf)

    assert pending.status_code == 503
    assert pending.json()["failing"] == ["migrations"]
    assert pending.json()["checks"]["migrations"]["message"] == (
        "1 migration is not applied yet; run `quell migrate`."
    )
    assert probe.get("/readyz").status_code == 200


def test_probes_answer_whatever_host_name_a_load_balancer_uses(
    probe: httpx.Client, settings: LazySettings
) -> None:
    settings.READY_WORKER_SECONDS = 0
    by_ip = {"Host": "10.20.30.40:8000"}

    assert probe.get("/healthz", headers=by_ip).status_code == 200
    assert probe.get("/readyz", headers=by_ip).status_code == 200
    assert probe.get("/metrics", headers=by_ip).status_code == 200
    # Pages still refuse a host they do not serve.
    assert probe.get("/login/", headers=by_ip).status_code == 400


def test_probes_only_answer_reads(probe: httpx.Client) -> None:
    response = probe.post("/healthz")

    assert response.status_code == 405
    assert "set-cookie" not in probe.get("/healthz").headers
