"""Real HTTP receivers on 127.0.0.1, fast retry settings, and a way to run queued deliveries in-process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import LazySettings
from django.db import transaction
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from quell.integrations import delivery
from quell.integrations import services as integrations
from quell.integrations.models import Delivery, Integration
from tests.conftest import World


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """An HTTP server that records every POST and answers from a script (then with `default`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.answer: Callable[[Received], Reply] | None = None
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                )
                with receiver.lock:
                    receiver.requests.append(got)
                    receiver.lock.notify_all()
                    reply = receiver.reply_to(got)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply_to(self, got: Received) -> Reply:
        if self.answer is not None:
            return self.answer(got)
        if self.script:
            return self.script.pop(0)
        return self.default

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.close()


@pytest.fixture
def fast(settings: LazySettings) -> LazySettings:
    """Local receivers allowed, and retries in tens of milliseconds instead of seconds."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_SECONDS = 0.2
    settings.WEBHOOK_RETRY_WINDOW_SECONDS = 30.0
    settings.WEBHOOK_LEASE_SECONDS = 10.0
    return settings


def run_queued_tasks() -> int:
    """Run the due tasks as `quell worker` does (django-tasks-db's own run_task), in this process."""
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="pytest",
        excluded_queue_names=[],
    )
    ran = 0
    while True:
        with transaction.atomic():
            task = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if task is not None:
                task.claim("pytest")
        if task is None:
            return ran
        worker.run_task(task)
        ran += 1


def drain(until: Callable[[], bool] | None = None, timeout: float = 15) -> None:
    """Run deliveries (and the sweeper) until `until()` holds, or until nothing is left to do."""
    deadline = time.monotonic() + timeout
    while True:
        ran = run_queued_tasks()
        delivery.sweep()
        if until is not None and until():
            return
        if (
            until is None
            and not ran
            and not Delivery.objects.filter(status__in=["pending", "delivering"]).exists()
        ):
            return
        if time.monotonic() > deadline:
            states = list(Delivery.objects.values_list("id", "status", "attempts", "last_error"))
            raise AssertionError(f"deliveries did not settle in {timeout} s: {states}")
        time.sleep(0.02)


def add_webhook(world: World, url: str, **options: Any) -> tuple[Integration, str]:
    options.setdefault("events", ["incidentCreated", "incidentUpdated", "checkEvaluation"])
    integration, secret = integrations.create_integration(
        by=world.admin,
        name=options.pop("name", "Receiver"),
        kind=options.pop("kind", "webhook"),
        url=url,
        **options,
    )
    return integration, secret or ""


def expected_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks signature, computed here from the spec rather than with Quell's library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
