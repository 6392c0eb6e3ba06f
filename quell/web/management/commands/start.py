"""`quell start`: migrate, then run the task worker and the web server until stopped.

The web server is `quell serve` (gunicorn) with one process and a few threads, which is what SQLite
wants: one writer at a time, and no second process competing for the write lock. For several web and
worker processes on PostgreSQL, run `quell serve` and `quell worker` yourself (docs/deploy.md).

The worker and the server are child processes in their own process group, so Ctrl-C in a terminal
reaches only this process, which then stops each child once and in order: the server, then the
worker (which finishes its current task first). SIGTERM and SIGHUP do the same. When the server exits
by itself, the worker is stopped too. Under systemd, use KillMode=mixed so the children are not sent
a second signal while they shut down.

"Web server running" is said when the server accepts connections: gunicorn sends systemd's READY=1
to $NOTIFY_SOCKET once it listens, and `quell start` plays systemd's part for its child (and passes
READY=1 on to systemd when it runs under a Type=notify unit itself).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from gunicorn import systemd  # type: ignore[import-untyped]

from quell.accounts.models import User
from quell.demo import DemoRefused, load_demo
from quell.lib.errors import QuellError

# Gunicorn lets requests in flight finish for its --timeout (30 s by default) before it exits.
SERVER_STOP_SECONDS = 35
SERVER_THREADS = 4
WORKER_STOP_SECONDS = 30
# A worker that exits sooner than this after starting is failing, not finishing; it is not restarted.
WORKER_MIN_LIFETIME = 10.0
POLL_SECONDS = 0.2

logger = logging.getLogger(__name__)


def browser_host(addr: str) -> tuple[str, str]:
    """(host, port) to put in a URL for the server's address, which may be "port", "host:port", "[v6]:port"."""
    if addr.isdigit():
        return "127.0.0.1", addr
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--addr must be PORT or HOST:PORT, not {addr!r}.")
    if host in {"0.0.0.0", "0"}:  # noqa: S104 - naming the wildcard to print a usable address instead
        host = "127.0.0.1"
    elif host == "[::]":
        host = "[::1]"
    return host, port


@contextmanager
def readiness_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket for the web server's READY=1, and its path (for the server's NOTIFY_SOCKET)."""
    # mkdtemp makes the folder 700: no other user can send to the socket in it.
    with tempfile.TemporaryDirectory(prefix="quell-start-") as folder:
        path = os.path.join(folder, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.setblocking(False)
            yield sock, path


def said_ready(sock: socket.socket, timeout: float) -> bool:
    """Whether READY=1 arrived on `sock` within `timeout` seconds."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    while True:
        try:
            message = sock.recv(4096)
        except BlockingIOError:
            return False
        if b"READY=1" in message.split(b"\n"):
            return True


class Command(BaseCommand):
    help = (
        "Start Quell on this machine: migrations, the task worker and the web server. It runs until "
        "Ctrl-C or SIGTERM. With --demo, a database without users first gets the demo organisation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--addr", default="127.0.0.1:8000", help="Address for the web server (default 127.0.0.1:8000)."
        )
        parser.add_argument(
            "--demo", action="store_true", help="On first start (no users yet), load the demo organisation."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        addr: str = options["addr"]
        host, port = browser_host(addr)
        base_url = f"http://{host}:{port}"
        self.say("Applying database migrations...")
        call_command("migrate", interactive=False, verbosity=max(0, options["verbosity"] - 1))
        if options["demo"]:
            self.load_demo_once(f"{base_url}/login/")
        elif not User.objects.exists():
            self.say(
                "There are no users yet. Create an admin with "
                "`quell createadmin --email you@example.com --password ...`, or start with --demo."
            )
        self.say(f"Starting the task worker and the web server at {base_url}/ ...")
        connections.close_all()

        env = dict(os.environ)
        # Links Quell writes (cloudUrl, mails) point at this server unless the operator said otherwise.
        env.setdefault("QUELL_BASE_URL", base_url)
        # Every process logs in the format chosen here, so one terminal shows one format.
        env.setdefault("QUELL_LOG_FORMAT", settings.LOG_FORMAT)
        # systemd's socket, if any, is for this process: it says READY=1 once the server does.
        env.pop("NOTIFY_SOCKET", None)
        self.run_children(addr, base_url, env)

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def load_demo_once(self, login_url: str) -> None:
        if User.objects.exists():
            self.say(
                "This database already has users, so the demo is not loaded (it loads on first start only)."
            )
            return
        self.say("First start: loading the demo organisation...")
        try:
            summary = load_demo()
        except (DemoRefused, QuellError) as error:
            raise CommandError(str(error)) from None
        self.say(
            f"Loaded {summary.organisation} in {summary.seconds:.1f} s: {summary.datasets} datasets, "
            f"{summary.checks} checks, {summary.results} check results, {summary.incidents} incidents."
        )
        self.say(f"Log in at {login_url} as any of:")
        for line in summary.login_lines():
            self.say(line)

    # --- Children ---------------------------------------------------------------------------------

    def run_children(self, addr: str, base_url: str, env: dict[str, str]) -> None:
        bind = f"127.0.0.1:{addr}" if addr.isdigit() else addr
        stop_signal: list[int] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop_signal.append(signum)

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, request_stop)

        with readiness_socket() as (ready, ready_path):
            self.supervise(bind, base_url, env, ready, ready_path, stop_signal)

    def supervise(
        self,
        bind: str,
        base_url: str,
        env: dict[str, str],
        ready: socket.socket,
        ready_path: str,
        stop_signal: list[int],
    ) -> None:
        worker = self.spawn_worker(env)
        worker_started = time.monotonic()
        serve = ["serve", "--bind", bind, "--workers", "1", "--threads", str(SERVER_THREADS)]
        server = self.spawn([sys.executable, "-m", "quell", *serve], env | {"NOTIFY_SOCKET": ready_path})
        announced = False
        failure = ""
        try:
            while not stop_signal:
                if server.poll() is not None:
                    break
                if worker.poll() is not None:
                    if time.monotonic() - worker_started < WORKER_MIN_LIFETIME:
                        failure = (
                            f"The task worker exited right after starting (exit code {worker.returncode})."
                        )
                        break
                    self.say(f"The task worker exited (code {worker.returncode}); starting a new one.")
                    worker = self.spawn_worker(env)
                    worker_started = time.monotonic()
                if announced:
                    time.sleep(POLL_SECONDS)
                elif said_ready(ready, POLL_SECONDS):
                    announced = True
                    self.say(
                        f"Web server running (pid {server.pid}): Quell is at {base_url}/ "
                        f"- log in at {base_url}/login/"
                    )
                    systemd.sd_notify("READY=1", logger)
        finally:
            self.stop(server, "web server", signal.SIGTERM, SERVER_STOP_SECONDS)
            self.stop(worker, "task worker", signal.SIGTERM, WORKER_STOP_SECONDS)
        if failure:
            raise CommandError(failure)
        if stop_signal:
            self.say(f"Stopped ({signal.Signals(stop_signal[0]).name}).")
            return
        if server.returncode:
            raise CommandError(f"The web server stopped (exit code {server.returncode}).", returncode=1)
        self.say("The web server stopped.")

    def spawn_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        worker = self.spawn([sys.executable, "-m", "quell", "worker"], env)
        self.say(f"Task worker running (pid {worker.pid}).")
        return worker

    def spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Their own process group: a terminal's Ctrl-C reaches only us, and we stop each child once.
        return subprocess.Popen(command, env=env, process_group=0)  # noqa: S603 (our own interpreter)

    def stop(self, child: subprocess.Popen[bytes], name: str, signum: int, timeout: float) -> None:
        if child.poll() is None:
            child.send_signal(signum)
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                self.say(f"The {name} did not stop within {timeout:g} s; killing it.")
                child.kill()
                child.wait()
