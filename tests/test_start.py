"""`quell start` as a person runs it: what it says, when it says it, and how its log reads."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import OWN_SQLITE_DATA_DIR

pytestmark = pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)

QUELL = Path(sys.executable).with_name("quell")
READY = "Web server running"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite installation, shared by this file's starts (each migrates nothing then)."""
    folder = tmp_path_factory.mktemp("start")
    migrated = subprocess.run(
        [str(QUELL), "migrate", "--no-input"], env=start_env(folder), capture_output=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stderr
    return folder


def start_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    return env | {"QUELL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


@contextmanager
def started(
    data_dir: Path, port: int, stdout: int | IO[bytes], stderr: int | IO[bytes]
) -> Iterator[subprocess.Popen[bytes]]:
    start = subprocess.Popen(
        [str(QUELL), "start", "--addr", f"127.0.0.1:{port}"],
        env=start_env(data_dir),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )
    try:
        yield start
    finally:
        if start.poll() is None:
            start.send_signal(signal.SIGTERM)
            try:
                start.wait(60)
            except subprocess.TimeoutExpired:
                start.kill()
                start.wait()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.02)


def test_start_says_the_web_server_runs_once_it_accepts_connections(data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr, started(data_dir, port, stdout, stderr) as start:
        wait_for(lambda: READY in out.read_text() or start.poll() is not None, 120, "the server starting")
        assert start.poll() is None, out.read_text() + err.read_text()

        # At once: a server announced before it listens refuses this connection.
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)

        assert answer.status_code == 200
        assert f"{READY} (pid " in out.read_text()
        assert (
            f"Quell is at http://127.0.0.1:{port}/ - log in at http://127.0.0.1:{port}/login/"
            in out.read_text()
        )

    # Not a terminal: every log line is JSON, gunicorn's own lines too.
    records = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    assert any(record["logger"] == "gunicorn.error" for record in records)


def test_start_on_a_terminal_logs_every_line_in_one_format(data_dir: Path) -> None:
    port = free_port()
    terminal, their_end = pty.openpty()
    seen = bytearray()

    def read_until(text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text.encode() not in seen:
            assert time.monotonic() < deadline, f"{text!r} not shown within {seconds} s: {seen.decode()}"
            if select.select([terminal], [], [], 0.1)[0]:
                seen.extend(os.read(terminal, 65536))

    try:
        with started(data_dir, port, their_end, their_end) as start:
            os.close(their_end)
            read_until(READY, 120)
            httpx.get(
                f"http://127.0.0.1:{port}/login/", headers={"X-Request-ID": "on-a-terminal"}, timeout=30
            )
            read_until("[on-a-terminal] GET /login/ 200", 30)
            start.send_signal(signal.SIGTERM)
            read_until("Stopped (SIGTERM).", 60)
    finally:
        os.close(terminal)

    lines = seen.decode().replace("\r\n", "\n").splitlines()
    log_line = re.compile(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[\S+\] "
    )
    logged = [line for line in lines if log_line.match(line)]
    assert any(" gunicorn.error [-] Listening at: " in line for line in logged)
    assert any(" quell.request [on-a-terminal] GET /login/ 200" in line for line in logged)
    # Nothing in JSON, nor in gunicorn's own "[date] [pid] [LEVEL]" format.
    assert not [line for line in lines if line.startswith(("{", "["))]
