"""Real Soda Core clients for the ingestion tests, and helpers to speak Soda's protocol by hand.

Soda Core 3.x and 4.x cannot share an environment, so each gets its own virtual environment in
`.cache/` at the repository root, made on first use and kept between runs (and between the SQLite
and PostgreSQL passes of one CI run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import World

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

SODA_PACKAGES = {
    "soda3": ["soda-core==3.5.6", "soda-core-duckdb==3.5.6"],
    "soda4": ["soda-core==4.28.0", "soda-duckdb==4.28.0"],
}


def _python() -> str:
    for candidate in ("python3.11", "python3.12"):
        found = shutil.which(candidate)
        if found:
            return found
    return sys.executable


def soda_venv(name: str) -> Path:
    """The venv with Soda Core, made once; skipped (failed in CI) when PyPI cannot be reached."""
    venv = CACHE / name
    ready = venv / ".quell-ready"
    wanted = " ".join(SODA_PACKAGES[name])
    if ready.exists() and ready.read_text() == wanted:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(exist_ok=True)
    steps = [
        [_python(), "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *SODA_PACKAGES[name],
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            reason = f"could not install {wanted}: {(done.stderr or done.stdout).strip()[-800:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    ready.write_text(wanted)
    return venv


@pytest.fixture(scope="session")
def soda3() -> Path:
    return soda_venv("soda3")


@pytest.fixture(scope="session")
def soda4() -> Path:
    return soda_venv("soda4")


def run_in(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(cwd),
        # Soda sends telemetry to its collector; the sandbox has no internet and tests need none.
        "OTEL_SDK_DISABLED": "true",
        "SODA_TELEMETRY_DISABLED": "true",
        "LC_ALL": "C.UTF-8",
    }
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def make_duckdb(venv: Path, path: Path, *statements: str) -> None:
    """Run SQL against a DuckDB file with the client venv's duckdb (Quell itself does not need it)."""
    script = "import duckdb, json, sys\ncon = duckdb.connect(sys.argv[1])\n"
    script += "for s in json.loads(sys.argv[2]):\n    con.execute(s)\ncon.close()\n"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(path), json.dumps(list(statements))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Soda:
    """Speaks Soda's protocol to the live server as Soda Core would, for the message-level tests."""

    http: httpx.Client
    key: tuple[str, str]

    def login(self) -> str:
        response = self.http.post(
            "/api/command", json={"type": "login", "apiKeyId": self.key[0], "apiKeySecret": self.key[1]}
        )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token

    def command(self, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return self.http.post("/api/command", json={**body, "token": token or self.login()})

    def query(self, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return self.http.post("/api/query", json={**body, "token": token or self.login()})


SodaFor = Callable[[str], Soda]


@pytest.fixture
def soda_for(live_server: Any, world: World) -> Iterator[SodaFor]:
    """`soda_for("editor")` speaks Soda's protocol with that user's API key."""
    clients: list[httpx.Client] = []

    def make(name: str) -> Soda:
        client = httpx.Client(base_url=live_server.url, timeout=60, headers={"User-Agent": "SodaCore/3.5.6"})
        clients.append(client)
        return Soda(client, world.keys[name])

    yield make
    for client in clients:
        client.close()


def captured_upload(name: str) -> dict[str, Any]:
    """A real upload captured from an unmodified client: {message type: {"path", "body"}}."""
    data = json.loads((FIXTURES / "soda" / name).read_text())
    assert isinstance(data, dict)
    return data
