"""Real `quell worker` processes: one killed mid-burst loses nothing, several never send the same delivery twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import LazySettings
from django.db import connection
from django_tasks_db.models import DBTaskResult

from quell.incidents import services as incidents
from quell.integrations.models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus, Event
from tests.conftest import World, push
from tests.integrations.conftest import Received, Receiver, Reply, add_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `quell worker` processes on the test database, with short leases and sweeps."""
    workers: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "QUELL_DATABASE_URL": database_url(),
        "QUELL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1",
        "QUELL_WEBHOOK_TIMEOUT_SECONDS": "5",
        "QUELL_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "QUELL_WEBHOOK_RETRY_MAX_SECONDS": "0.3",
        "QUELL_WEBHOOK_LEASE_SECONDS": "2",
        "QUELL_WEBHOOK_SWEEP_SECONDS": "0.3",
        "QUELL_LOG_LEVEL": "WARNING",
    }

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "quell", "worker", "--interval", "0.05"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def wait_until(condition: Callable[[], bool], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = list(Delivery.objects.values_list("id", "status", "attempts", "last_error"))
            raise AssertionError(f"not done in {timeout} s: {states}")
        time.sleep(0.1)


def all_delivered() -> bool:
    return (
        Delivery.objects.exists() and not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
    )


def burst(world: World, incidents_count: int, updates: int) -> None:
    """Open incidents and move each through `updates` severity changes: 1 + updates events per incident."""
    opened = [
        incidents.create_incident(
            by=world.admin,
            title=f"Burst {n}",
            check_result_ids=[world.customers_fail.pk],
            allow_duplicate=True,
        )
        for n in range(incidents_count)
    ]
    severities = ["critical", "minor", "major"]
    for step in range(updates):
        for incident in opened:
            incidents.update_incident(incident.pk, by=world.admin, severity=severities[step % 3])


def assert_in_order_per_incident(requests: list[Received]) -> None:
    """For each incident, the first arrival of each event follows the order the events were made in."""
    event_order = {e.message_id: e.pk for e in Event.objects.all()}
    firsts: dict[int, list[int]] = {}
    seen: set[str] = set()
    for request in requests:
        if request.webhook_id in seen:
            continue
        seen.add(request.webhook_id)
        firsts.setdefault(request.json()["incident"]["id"], []).append(event_order[request.webhook_id])
    for order in firsts.values():
        assert order == sorted(order)


def test_a_worker_killed_in_the_middle_of_a_burst_loses_no_event(
    world: World, receiver: Receiver, fast: LazySettings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    holding, release = threading.Event(), threading.Event()

    def answer(request: Received) -> Reply:
        if len(receiver.requests) == 4:
            # Keep the fourth request open, so the kill lands in the middle of a delivery.
            holding.set()
            release.wait(20)
        return Reply(200)

    receiver.answer = answer
    add_webhook(world, receiver.url)
    doomed = start_worker()
    burst(world, incidents_count=3, updates=3)
    assert holding.wait(30), "the worker never got to the fourth delivery"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    release.set()
    burst(world, incidents_count=2, updates=2)
    start_worker()
    start_worker()
    wait_until(all_delivered)

    requests = receiver.requests
    sent = set(Event.objects.values_list("message_id", flat=True))
    assert len(sent) == 3 * 4 + 2 * 3
    assert {r.webhook_id for r in requests} == sent
    for request in requests:
        assert request.json()["id"] == request.webhook_id
    bodies: dict[str, bytes] = {}
    for request in requests:
        assert bodies.setdefault(request.webhook_id, request.body) == request.body
    assert_in_order_per_incident(requests)
    lost = DeliveryAttempt.objects.filter(outcome=AttemptOutcome.LOST)
    assert lost.count() == 1
    wait_until(lambda: not DBTaskResult.objects.filter(status="RUNNING").exists(), timeout=10)
    assert DBTaskResult.objects.filter(exception_class_path__endswith="WorkerLost").count() == 1


def test_several_workers_share_the_queue_without_sending_anything_twice(
    world: World, receiver: Receiver, fast: LazySettings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    receiver.default = Reply(200, delay=0.02)
    add_webhook(world, receiver.url, events=["incidentCreated", "incidentUpdated", "checkEvaluation"])
    for _ in range(3):
        start_worker()
    burst(world, incidents_count=4, updates=4)
    for n in range(4):
        push(world.admin, "warehouse", f"table_{n}", ("row_count > 0", "fail", 0))
    wait_until(all_delivered)

    ids = [r.webhook_id for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 4 * 5 + 4
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    assert_in_order_per_incident([r for r in receiver.requests if "incident" in r.json()])
