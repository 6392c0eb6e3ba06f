"""Real processes for the operations tests: Quell's WSGI app served by another process, `quell worker`
processes, both on the test database and writing their logs to files; and a reader for /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integrations.conftest import (  # noqa: F401  (fixtures: a local receiver, fast retries)
    fast,
    receiver,
)
from tests.integrations.test_workers import database_url

# Quell's own WSGI application behind the standard library's server, on a port the OS picks.
SERVE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
from wsgiref.simple_server import WSGIRequestHandler, make_server
from quell.wsgi import application

class Handler(WSGIRequestHandler):
    def log_message(self, *args):
        pass  # Quell writes its own line per request

server = make_server("127.0.0.1", 0, application, handler_class=Handler)
print(server.server_port, flush=True)
server.serve_forever()
"""


def wait_until(condition: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout} s")
        time.sleep(0.1)


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON objects the process has logged so far (each line must be one)."""
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def process_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "QUELL_DATABASE_URL": database_url(),
        "QUELL_LOG_FORMAT": "json",
        "QUELL_LOG_LEVEL": "INFO",
        "QUELL_HEARTBEAT_SECONDS": "0.2",
        "QUELL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1",
        "QUELL_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "QUELL_WEBHOOK_RETRY_MAX_SECONDS": "0.2",
        "QUELL_WEBHOOK_SWEEP_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def start_worker(processes: list[Process], tmp_path: Path) -> Callable[..., Process]:
    """Start `quell worker` on the test database; returns once it is taking tasks."""

    def start(**env: str) -> Process:
        log = tmp_path / f"worker-{len(processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "quell", "worker", "--interval", "0.05"],
                env=process_env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        worker = Process(popen, log)
        processes.append(worker)
        # It takes SIGTERM gracefully only once db_worker has set up its signal handlers.
        wait_until(
            lambda: popen.poll() is None and "Starting worker" in log.read_text(),
            what=f"the worker starting (log: {log})",
        )
        return worker

    return start


@pytest.fixture
def start_web(processes: list[Process], tmp_path: Path) -> Callable[..., Process]:
    """Serve Quell from another process on the test database; returns once it listens."""

    def start(**env: str) -> Process:
        log = tmp_path / f"web-{len(processes)}.log"
        with log.open("wb") as err:
            popen = subprocess.Popen(
                [sys.executable, "-c", SERVE],
                env=process_env(**env),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        assert popen.stdout is not None
        port = popen.stdout.readline().decode().strip()
        assert port.isdigit(), f"the web process did not start: {log.read_text()}"
        web = Process(popen, log, f"http://127.0.0.1:{port}")
        processes.append(web)
        return web

    return start


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0 when there is none yet)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def scrape(live_server: Any) -> Callable[[], str]:
    """/metrics of the live server, from loopback (allowed by default)."""

    def read() -> str:
        response = httpx.get(f"{live_server.url}/metrics", timeout=30)
        assert response.status_code == 200, response.text
        return response.text

    return read
