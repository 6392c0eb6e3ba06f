"""The data directory is private to Quell's user: folders 700, files 600, on a new installation and on one
upgraded from when they were 755 and 644; `quell check --deploy` warns about what is not. The tests run
real `quell` processes on SQLite data directories of their own, whichever database the suite uses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.conf import LazySettings
from django.core.management import call_command

from tests.conftest import OWN_SQLITE_DATA_DIR

pytestmark = pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)

REPO = Path(__file__).resolve().parents[2]

# A Quell process that writes and, while its connection is still open (SQLite removes the -wal and -shm
# files when the last one closes), tells the modes of the database's files.
WRITER = """
import json, os, stat
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
import django
django.setup()
from django.conf import settings
from quell.accounts.models import User

User.objects.create_user("writer@example.com", "a password for the writer")
print(json.dumps({
    path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in settings.DATA_DIR.glob("quell.sqlite3*")
}))
"""


def env_for(home: Path) -> dict[str, str]:
    # Without this test process's metrics directory, so the processes keep theirs in `home`.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("QUELL_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return env | {"QUELL_DATA_DIR": str(home), "PYTHONUNBUFFERED": "1"}


def quell(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "quell", *args],
        env=env_for(home),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def modes(home: Path) -> dict[str, str]:
    """Every folder and file under `home` (itself as "."), with its permission bits."""
    found = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for path in home.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # SQLite's -wal and -shm come and go
            found[str(path.relative_to(home))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def not_private(home: Path) -> dict[str, str]:
    return {
        name: mode
        for name, mode in modes(home).items()
        if mode != ("0o700" if (home / name).is_dir() else "0o600")
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="stops `quell start` with SIGTERM")
def test_a_running_installation_keeps_everything_in_its_data_directory_private(tmp_path: Path) -> None:
    home = tmp_path / "data"
    port = free_port()
    log_path = tmp_path / "start.log"
    with log_path.open("wb") as log:
        start = subprocess.Popen(
            [sys.executable, "-m", "quell", "start", "--addr", f"127.0.0.1:{port}"],
            env=env_for(home),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert start.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/login/", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        deadline = time.monotonic() + 120
        while not answers():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        # Writes by other processes while the server and the worker hold the database open.
        quell(home, "createadmin", "--email", "ops@example.com", "--password", "a good password")
        signed_in = httpx.Client(base_url=base, timeout=10)
        signed_in.get("/login/")
        answer = signed_in.post(
            "/login/",
            data={
                "email": "ops@example.com",
                "password": "a good password",
                "csrfmiddlewaretoken": signed_in.cookies["csrftoken"],
            },
        )
        assert answer.status_code == 302, answer.text
        quell(home, "backup", str(home))
        written = subprocess.run(
            [sys.executable, "-c", WRITER],
            env=env_for(home),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert written.returncode == 0, written.stderr
        # SQLite makes these lazily, after writes; they must be private from the moment they exist.
        assert json.loads(written.stdout) == {
            "quell.sqlite3": "0o600",
            "quell.sqlite3-wal": "0o600",
            "quell.sqlite3-shm": "0o600",
        }

        found = modes(home)
        assert {"quell.sqlite3", "secret_key"} <= set(found)
        assert any(name.startswith("quell-backup-") for name in found)
        assert any(name.startswith("static/") for name in found)
        assert any(name.startswith("metrics/") and name.endswith(".db") for name in found)
        assert not_private(home) == {}
    finally:
        if start.poll() is None:
            start.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                start.wait(timeout=60)
        if start.poll() is None:
            start.kill()
            start.wait()


def test_an_installation_from_before_gets_its_folder_and_files_tightened_at_start(tmp_path: Path) -> None:
    home = tmp_path / "data"
    quell(home, "migrate", "--verbosity", "0")
    (home / "static" / "quell").mkdir(parents=True)
    (home / "static" / "quell" / "quell.css").write_text("body {}")
    (home / "quell-backup-20260101T000000Z.tar.gz").write_bytes(b"an old backup")
    # An older Quell still running: the database's WAL and shared memory exist, with its old modes.
    older = sqlite3.connect(home / "quell.sqlite3")
    try:
        older.execute("PRAGMA journal_mode=WAL")
        older.execute("CREATE TABLE written_by_an_older_quell (x)")
        older.commit()
        assert (home / "quell.sqlite3-wal").exists()
        assert (home / "quell.sqlite3-shm").exists()
        for path in [home, *home.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert not_private(home) != {}

        quell(home, "migrate", "--verbosity", "0")

        assert not_private(home) == {}
        assert {"quell.sqlite3-wal", "quell.sqlite3-shm"} <= set(modes(home))
    finally:
        older.close()


def test_check_deploy_warns_when_the_data_directory_is_readable_by_others(
    tmp_path: Path, settings: LazySettings
) -> None:
    home = tmp_path / "data"
    home.mkdir(mode=0o700)
    (home / "secret_key").write_text("kept")
    (home / "secret_key").chmod(0o600)
    settings.DATA_DIR = home

    private = StringIO()
    call_command("check", "--deploy", stdout=private, stderr=private)
    assert "ops.W001" not in private.getvalue()

    # What Quell could not tighten at start (another user's file, a read-only mount) stays as it was.
    home.chmod(0o755)
    (home / "secret_key").chmod(0o644)
    loose = StringIO()
    call_command("check", "--deploy", stdout=loose, stderr=loose)
    warned = loose.getvalue()
    assert "ops.W001" in warned
    assert f"{home} (755)" in warned
    assert f"{home / 'secret_key'} (644)" in warned
    assert f"chmod -R go= {home}" in warned
