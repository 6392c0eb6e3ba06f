"""`quell serve`: gunicorn with several processes, collected static files, and safe production settings.

Each test starts the real command as a subprocess against the test database (SQLite or PostgreSQL,
whichever the suite runs on), so the data made here with the ORM is what the server reads.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import LazySettings, settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command

from quell.web import staticfiles
from tests.conftest import COMMAND_LINE_ONLY, OWN_SQLITE_DATA_DIR, World

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 180  # collecting static files on a busy machine takes a while; this is a guard only
HASHED_CSS = re.compile(r'href="(/static/quell/quell\.[0-9a-f]{12}\.css)"')
PASSWORD = "a password for serve tests"

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="inspects processes in /proc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return bool(condition())  # type: ignore[operator]


def shared_database_url() -> str:
    """The URL of the database pytest-django made, for a server process to share it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgresql://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One STATIC_ROOT for every server of the run, so the files are collected once."""
    return tmp_path_factory.mktemp("static")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def server_env(tmp_path: Path, static_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    return env | {
        "QUELL_DATA_DIR": str(tmp_path / "data"),
        "QUELL_STATIC_ROOT": str(static_root),
        "QUELL_DATABASE_URL": shared_database_url(),
        "QUELL_SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def quell_serve(
    tmp_path: Path, static_root: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    command = [
        sys.executable,
        "-m",
        "quell",
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=server_env(tmp_path, static_root, **(env or {})), cwd=REPO, stdout=out, stderr=out
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:

        def answers() -> bool:
            assert process.poll() is None, server.output()
            try:
                httpx.get(f"{server.base}/login/", timeout=5)
            except httpx.TransportError:
                return False
            return True

        assert wait_until(answers, START_SECONDS), server.output()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_quell(
    tmp_path: Path, static_root: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quell", *args],
        env=server_env(tmp_path, static_root, **extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        check=False,
    )


def set_real_password(world: World, name: str) -> str:
    # The suite hashes with MD5 for speed; the server only accepts the hashers Quell configures.
    user = world.user(name)
    user.password = make_password(PASSWORD, hasher=PBKDF2PasswordHasher())
    user.save(update_fields=["password"])
    return user.email


def set_cookie(response: httpx.Response, name: str) -> str:
    found = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert found, response.headers
    return found[0]


# --- Processes, pages, API and static files ------------------------------------------------------


def test_serve_runs_two_processes_that_serve_pages_the_api_and_hashed_compressed_static_files(
    transactional_db: None, world: World, tmp_path: Path, static_root: Path
) -> None:
    with quell_serve(tmp_path, static_root, workers=2) as server:
        master = server.process.pid
        assert wait_until(lambda: len(children_of(master)) == 2, 60), server.output()
        workers = children_of(master)
        assert "Quell web server on 127.0.0.1" in server.output()

        with httpx.Client(base_url=server.base, timeout=30) as client:
            # Enough requests that both processes take some; every one must be answered.
            answers = [client.get("/login/") for _ in range(20)]
            assert {a.status_code for a in answers} == {200}
            page = answers[0]

            incidents = client.get("/api/v1/incidents", auth=world.keys["viewer"])
            assert incidents.status_code == 200, incidents.text
            assert client.get("/api/v1/incidents").status_code == 401

            css = HASHED_CSS.search(page.text)
            assert css, page.text
            for encoding in ("br", "gzip"):
                static = client.get(css[1], headers={"Accept-Encoding": encoding})
                assert static.status_code == 200
                assert static.headers["content-encoding"] == encoding
                assert "immutable" in static.headers["cache-control"]
                assert "max-age=315360000" in static.headers["cache-control"]
                assert "text/css" in static.headers["content-type"]
            # Unhashed names still answer (old bookmarks, tools), but are not cached for long.
            plain = client.get("/static/quell/quell.css")
            assert plain.status_code == 200
            assert "immutable" not in plain.headers["cache-control"]

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0, server.output()
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 30)


@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_serve_refuses_to_start_while_migrations_are_pending(tmp_path: Path, static_root: Path) -> None:
    never = tmp_path / "never-migrated.sqlite3"
    refused = run_quell(
        tmp_path, static_root, "serve", "--bind", "127.0.0.1:0", QUELL_DATABASE_URL=f"sqlite:///{never}"
    )
    assert refused.returncode == 1
    assert f"There is no Quell database at {never}" in refused.stderr
    assert "Run `quell migrate` to create it" in refused.stderr
    assert not never.exists()

    # Half way: the tables of Django's own apps, none of Quell's.
    partly = f"sqlite:///{tmp_path / 'partly.sqlite3'}"
    run_quell(tmp_path, static_root, "migrate", "contenttypes", QUELL_DATABASE_URL=partly)
    refused = run_quell(tmp_path, static_root, "serve", "--bind", "127.0.0.1:0", QUELL_DATABASE_URL=partly)
    assert refused.returncode == 1
    assert "accounts.0001_initial" in refused.stderr
    assert "run `quell migrate` first" in refused.stderr


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--workers", "0"], {}, "--workers must be at least 1, not 0"),
        (["--threads", "-2"], {}, "--threads must be at least 1, not -2"),
        (["--bind", "8000"], {}, "--bind must be HOST:PORT (or unix:PATH), not '8000'"),
        ([], {"QUELL_WEB_WORKERS": "many"}, "QUELL_WEB_WORKERS must be a whole number, not 'many'"),
        ([], {"QUELL_WEB_TIMEOUT": "0"}, "QUELL_WEB_TIMEOUT must be at least 1, not 0"),
    ],
)
def test_serve_refuses_bad_options_with_a_clear_message(
    tmp_path: Path, static_root: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    # A free port, so that a check that wrongly let the server start could not take a real one.
    refused = run_quell(tmp_path, static_root, "serve", "--bind", "127.0.0.1:0", *args, **env)
    assert refused.returncode == 1
    assert message in refused.stderr


def test_static_files_are_collected_when_missing_or_changed_and_not_otherwise(
    settings: LazySettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    # Large enough that compressing it pays, or WhiteNoise rightly keeps no compressed copy.
    (source / "app.css").write_text("body { color: red }\n" * 200)
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATICFILES_DIRS = [source]
    settings.STATIC_ROOT = tmp_path / "root"
    monkeypatch.setattr(staticfiles, "_serving_collected", False)
    said: list[str] = []

    assert staticfiles_storage.url("app.css") == "/static/app.css"
    assert staticfiles.use_collected_static_files(said.append) is True
    first = staticfiles_storage.url("app.css")
    assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.css", first)
    collected = tmp_path / "root" / first.removeprefix("/static/")
    assert collected.with_suffix(".css.gz").exists()
    assert collected.with_suffix(".css.br").exists()

    assert staticfiles.use_collected_static_files(said.append) is False
    assert len(said) == 1

    (source / "app.css").write_text("body { color: blue }\n" * 200)
    assert staticfiles.use_collected_static_files(said.append) is True
    assert staticfiles_storage.url("app.css") not in {first, "/static/app.css"}

    # An operator's own `quell collectstatic` counts too: the next start finds the files current.
    (source / "app.css").write_text("body { color: green }\n" * 200)
    call_command("collectstatic", interactive=False, verbosity=0)
    assert staticfiles.use_collected_static_files(said.append) is False


# --- Security headers, cookies and the forwarded scheme -------------------------------------------


def test_pages_carry_the_security_headers_and_no_hsts_over_plain_http(
    transactional_db: None, world: World, tmp_path: Path, static_root: Path
) -> None:
    with quell_serve(tmp_path, static_root) as server:
        page = httpx.get(f"{server.base}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=30)
    assert page.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in page.headers
    csrf = set_cookie(page, "csrftoken")
    assert "HttpOnly" in csrf
    assert "Secure" not in csrf


def test_an_https_base_url_makes_cookies_secure_and_an_untrusted_forwarded_proto_changes_nothing(
    transactional_db: None, world: World, tmp_path: Path, static_root: Path
) -> None:
    email = set_real_password(world, "viewer")
    https = {"QUELL_BASE_URL": "https://quell.example.com", "QUELL_HSTS_SECONDS": "3600"}
    with quell_serve(tmp_path, static_root, env=https) as server, httpx.Client(timeout=30) as client:
        login = client.get(f"{server.base}/login/", headers={"X-Forwarded-Proto": "https"})
        assert login.status_code == 200
        # Anyone may send X-Forwarded-Proto; untrusted, the request is still plain http, so no HSTS.
        assert "strict-transport-security" not in login.headers
        csrf = set_cookie(login, "csrftoken")
        assert "Secure" in csrf
        assert "HttpOnly" in csrf

        token = csrf.split(";", 1)[0].split("=", 1)[1]
        logged_in = client.post(
            f"{server.base}/login/",
            data={"email": email, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Cookie": f"csrftoken={token}", "Origin": "https://quell.example.com"},
        )
        assert logged_in.status_code == 302, logged_in.text
        session = set_cookie(logged_in, "sessionid")
        assert "Secure" in session
        assert "HttpOnly" in session


def test_a_trusted_forwarded_proto_makes_requests_secure_and_plain_ones_are_redirected(
    transactional_db: None, world: World, tmp_path: Path, static_root: Path
) -> None:
    behind_proxy = {
        "QUELL_BASE_URL": "https://quell.example.com",
        "QUELL_HSTS_SECONDS": "3600",
        "QUELL_SSL_REDIRECT": "true",
        "QUELL_TRUST_FORWARDED_PROTO": "true",
    }
    with quell_serve(tmp_path, static_root, env=behind_proxy) as server, httpx.Client(timeout=30) as client:
        secure = client.get(f"{server.base}/login/", headers={"X-Forwarded-Proto": "https"})
        # X-Forwarded-Host is not trusted unless QUELL_TRUST_FORWARDED_HOST says so.
        plain = client.get(f"{server.base}/login/", headers={"X-Forwarded-Host": "attacker.example"})
    assert secure.status_code == 200
    assert secure.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{server.base.removeprefix('http://')}/login/"
    assert "strict-transport-security" not in plain.headers


# --- quell check --deploy -------------------------------------------------------------------------


def documented_configuration() -> dict[str, str]:
    """deploy/quell.env, the production configuration docs/deploy.md installs, minus what a test places."""
    env = {}
    for line in (REPO / "deploy" / "quell.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    for placed in ("QUELL_DATA_DIR", "QUELL_DATABASE_URL", "QUELL_WEB_BIND"):
        del env[placed]
    return env


DOCUMENTED = documented_configuration()


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
def test_check_deploy_is_clean_for_the_documented_production_configuration(
    tmp_path: Path, static_root: Path
) -> None:
    checked = run_quell(tmp_path, static_root, "check", "--deploy", "--fail-level", "WARNING", **DOCUMENTED)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
def test_check_deploy_warns_about_a_plain_http_configuration(tmp_path: Path, static_root: Path) -> None:
    checked = run_quell(tmp_path, static_root, "check", "--deploy", "--fail-level", "WARNING")
    assert checked.returncode == 1
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in checked.stderr


# --- Behind the documented nginx configuration ---------------------------------------------------

NGINX = Path("/usr/sbin/nginx")


def nginx_site(server: Server, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/quell.conf with this test's ports and certificate (and no IPv6 listeners)."""
    site = (REPO / "deploy" / "nginx" / "quell.conf").read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "server 127.0.0.1:8000;": f"server {server.base.removeprefix('http://')};",
        "/etc/letsencrypt/live/quell.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/quell.example.com/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in site, old
        site = site.replace(old, new)
    return "\n".join(line for line in site.splitlines() if "listen [::]" not in line)


@contextmanager
def nginx_in_front(tmp_path: Path, server: Server) -> Iterator[tuple[str, str]]:
    root = tmp_path / "nginx"
    root.mkdir()
    cert, key = root / "cert.pem", root / "key.pem"
    self_signed = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=quell.example.com",
    ]
    subprocess.run(
        ["openssl", *self_signed, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    http_port, https_port = free_port(), free_port()
    (root / "quell.conf").write_text(nginx_site(server, http_port, https_port, cert, key))
    temp = "\n".join(
        f"    {kind}_temp_path {root / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\npid {root / 'nginx.pid'};\nerror_log {root / 'error.log'};\n"
        + f"events {{}}\nhttp {{\n    access_log off;\n{temp}\n    include {root / 'quell.conf'};\n}}\n"
    )
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(root), "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
            try:
                httpx.get(f"http://127.0.0.1:{http_port}/", timeout=2)
            except httpx.TransportError:
                return False
            return True

        assert wait_until(listening, 30)
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    finally:
        nginx.terminate()
        nginx.wait(30)


@pytest.mark.skipif(not NGINX.exists(), reason="nginx not installed: apt-get install nginx-light")
def test_behind_the_documented_nginx_quell_is_https_only_with_secure_cookies_and_working_logins(
    transactional_db: None, world: World, tmp_path: Path, static_root: Path
) -> None:
    email = set_real_password(world, "viewer")
    host = {"Host": "quell.example.com"}
    with (
        quell_serve(tmp_path, static_root, env=DOCUMENTED) as server,
        nginx_in_front(tmp_path, server) as (http, https),
        httpx.Client(verify=False, timeout=60) as client,  # noqa: S501 - the test's own self-signed certificate
    ):
        redirected = client.get(f"{http}/login/", headers=host)
        assert redirected.status_code == 301
        assert redirected.headers["location"] == "https://quell.example.com/login/"

        login = client.get(f"{https}/login/", headers=host)
        assert login.status_code == 200, login.text
        assert login.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert "script-src 'self'" in login.headers["content-security-policy"]
        csrf = set_cookie(login, "csrftoken")
        assert "Secure" in csrf

        # Over https, Django checks the Origin against the base URL: the forwarded scheme must be believed.
        token = csrf.split(";", 1)[0].split("=", 1)[1]
        logged_in = client.post(
            f"{https}/login/",
            data={"email": email, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers=host | {"Cookie": f"csrftoken={token}", "Origin": "https://quell.example.com"},
        )
        assert logged_in.status_code == 302, logged_in.text
        assert logged_in.headers["location"] == "/"
        session = set_cookie(logged_in, "sessionid").split(";", 1)[0]
        home = client.get(f"{https}/", headers=host | {"Cookie": session})
        assert home.status_code == 200
        assert "What needs attention" in home.text

        # Only the base URL's host (and loopback) is answered.
        assert client.get(f"{https}/login/", headers={"Host": "attacker.example"}).status_code == 400

        # Through the proxy every client is loopback, so the proxy keeps /metrics to itself.
        assert client.get(f"{https}/metrics", headers=host).status_code == 404


# --- The systemd units ----------------------------------------------------------------------------

SYSTEMD_ANALYZE = Path("/usr/bin/systemd-analyze")


@pytest.mark.skipif(not SYSTEMD_ANALYZE.exists(), reason="systemd-analyze not installed")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists, so the units point at this checkout's `quell` here.
    quell = Path(sys.executable).with_name("quell")
    assert quell.exists()
    for unit in (REPO / "deploy" / "systemd").iterdir():
        text = unit.read_text()
        assert "/opt/quell/venv/bin/quell" in text
        (tmp_path / unit.name).write_text(text.replace("/opt/quell/venv/bin/quell", str(quell)))
    (tmp_path / "quell-worker@2.service").symlink_to("quell-worker@.service")
    verified = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "./quell-web.service", "./quell-worker@2.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [line for line in (verified.stdout + verified.stderr).splitlines() if "quell" in line]
    assert verified.returncode == 0, verified.stderr
    assert complaints == []


def test_the_master_freezes_the_loaded_app_before_each_fork_so_children_collect_only_their_own_objects() -> (
    None
):
    import gc

    from quell.web.gunicorn_conf import pre_fork

    gc.unfreeze()
    try:
        pre_fork(server=None, worker=None)

        assert gc.get_freeze_count() > 10_000, "the app's objects are in the permanent generation"
    finally:
        gc.unfreeze()
