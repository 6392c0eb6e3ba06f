"""Make tests/fixtures/release-0.1.0/: databases populated by Quell 0.1.0, for the upgrade tests.

    .venv/bin/python scripts/make_release_fixture.py --postgres-url postgresql://root@127.0.0.1:5432/postgres

It extracts release 0.1.0 (commit 02eeb6e) with `git archive`, and runs THAT code (PYTHONPATH points
at the extracted tree; this venv's packages are the release's dependencies plus newer ones) to
migrate a new database, load the demo organisation, add a small `loadgen` organisation, and then
touch every other table through the release's own service functions: integrations with delivered,
retrying and failed deliveries (sent to a receiver this script runs), an incident link, an API key,
a Soda token, a failed-rows sample, a contract, a check attribute, a session and a failed log-in.

It writes, next to a facts.json holding what the tests cannot read back from a database (the
API key's secret):
- quell.sqlite3.gz: the SQLite database (one file, WAL folded in);
- quell-postgresql.sql.gz: `pg_dump --no-owner --no-privileges` of the PostgreSQL database, in a
  scratch database this script creates on the server of --postgres-url and drops afterwards.

The same file, run with --inside-release, is the part that runs on the release's code.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RELEASE = "02eeb6e"
VERSION = "0.1.0"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / f"release-{VERSION}"
SCRATCH_DB = "quell_release_fixture"


# --- Driver: runs on the current code's venv ------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: /ok takes every message, /down is an outage (the deliveries retry)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status = 200 if self.path.startswith("/ok") else 503
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _extract_release(into: Path) -> Path:
    tree = into / f"quell-{VERSION}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", RELEASE], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _release_env(tree: Path, data_dir: Path, database_url: str | None, receiver: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUELL_", "PYTHON", "DJANGO_"))}
    env.update(
        PYTHONPATH=str(tree),
        QUELL_DATA_DIR=str(data_dir),
        QUELL_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1",
        QUELL_WEBHOOK_RETRY_BASE_SECONDS="600",
        QUELL_FIXTURE_RECEIVER=receiver,
        QUELL_ALLOWED_HOSTS="testserver,127.0.0.1",
    )
    if database_url:
        env["QUELL_DATABASE_URL"] = database_url
    return env


def _populate(tree: Path, env: dict[str, str]) -> dict[str, str]:
    def run(what: str, *command: str) -> str:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{what} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def quell(*args: str) -> str:
        # cwd is the release's tree: `python -m` puts it first on sys.path, ahead of this checkout.
        return run(f"quell {' '.join(args)}", sys.executable, "-m", "quell", *args)

    def inside(*args: str) -> str:
        return run(
            f"--inside-release {' '.join(args)}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--inside-release",
            *args,
        )

    quell("migrate", "--verbosity", "0")
    quell("demo")
    quell("loadgen", "--incidents", "300", "--days", "30", "--append", "--no-progress", "--seed", "7")
    facts: dict[str, str] = json.loads(inside().strip().splitlines()[-1])
    # The worker delivers what the changes above queued, the way a running installation would.
    quell("worker", "--batch")
    inside("link")
    return facts


def _gzip(data: bytes, to: Path) -> None:
    # mtime=0: no time of packing in the header, so the file changes only when the database does.
    with to.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as out:
        out.write(data)


def make_sqlite(tree: Path, work: Path, receiver: str) -> dict[str, str]:
    data_dir = work / "sqlite"
    facts = _populate(tree, _release_env(tree, data_dir, None, receiver))
    single = work / "quell.sqlite3"
    source = sqlite3.connect(data_dir / "quell.sqlite3")
    # VACUUM INTO writes one self-contained file (no -wal beside it) without the free pages.
    source.execute("VACUUM INTO ?", (str(single),))
    source.close()
    target = sqlite3.connect(single)
    target.execute("PRAGMA journal_mode=DELETE")
    target.close()
    _gzip(single.read_bytes(), OUT / "quell.sqlite3.gz")
    return facts


def make_postgresql(tree: Path, work: Path, receiver: str, server_url: str) -> dict[str, str]:
    import psycopg

    parts = urlsplit(server_url)
    scratch_url = urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}"')
        admin.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    try:
        facts = _populate(tree, _release_env(tree, work / "postgresql", scratch_url, receiver))
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--dbname", scratch_url],
            check=True,
            capture_output=True,
        ).stdout
        _gzip(dump, OUT / "quell-postgresql.sql.gz")
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}"')
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-url",
        required=True,
        help="a PostgreSQL server and a role that may create databases, e.g. postgresql://root@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--inside-release", action="store_true", help=argparse.SUPPRESS)
    if "--inside-release" in sys.argv:
        if sys.argv[-1] == "link":
            link_inside_release()
        else:
            print(json.dumps(populate_inside_release()))
        return
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="quell-release-fixture-"))
    try:
        tree = _extract_release(work)
        facts = {
            "release": RELEASE,
            "version": VERSION,
            "sqlite": make_sqlite(tree, work, receiver),
            "postgresql": make_postgresql(tree, work, receiver, args.postgres_url),
        }
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    (OUT / "facts.json").write_text(json.dumps(facts, indent=2) + "\n")
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size:,} bytes")


# --- Inside the release: runs on 0.1.0's code (PYTHONPATH), against the database being made ----------


def populate_inside_release() -> dict[str, Any]:
    """Rows for the tables the demo and loadgen leave empty, made by 0.1.0's own service functions."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    import django

    django.setup()

    from datetime import UTC, datetime

    from django.test import Client

    from quell.accounts.models import User
    from quell.accounts.services import create_api_key, record_login_failure
    from quell.catalog import services as catalog
    from quell.catalog.models import CheckResult, Dataset
    from quell.incidents import services as incidents
    from quell.incidents.models import Incident, Status
    from quell.ingest.services import log_in
    from quell.integrations import services as integrations

    receiver = os.environ["QUELL_FIXTURE_RECEIVER"]
    admin = User.objects.get(email="admin@quell.example")

    integrations.create_integration(
        by=admin,
        name="Ops webhook",
        kind="webhook",
        url=f"{receiver}/ok",
        events=["incidentCreated", "incidentUpdated", "checkEvaluation"],
        headers={"X-Team": "data-platform"},
    )
    integrations.create_integration(
        by=admin,
        name="Flaky receiver",
        kind="webhook",
        url=f"{receiver}/down",
        min_severity="major",
        dataset_ids=list(
            Dataset.objects.filter(data_source__name="postgres_app").values_list("pk", flat=True)
        ),
    )
    integrations.create_integration(
        by=admin,
        name="Data team on Slack",
        kind="slack",
        url="https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        enabled=False,
    )

    # Changes after the integrations exist, so they become events with deliveries and queued tasks.
    demo_incidents = list(Incident.objects.filter(number__lte=10).order_by("number"))
    for incident in demo_incidents[:3]:
        incidents.add_comment(incident.pk, "Looked at this during the upgrade rehearsal.", by=admin)
    open_one = next(i for i in demo_incidents if i.status == Status.REPORTED)
    incidents.update_incident(open_one.pk, by=admin, status=Status.INVESTIGATING, severity="critical")
    failing = (
        CheckResult.objects.filter(outcome="fail", dataset__data_source__name="postgres_app")
        .order_by("-id")
        .first()
    )
    assert failing is not None
    incidents.create_incident(
        by=admin,
        title="Release fixture: users table lost rows",
        description="Made by scripts/make_release_fixture.py on release 0.1.0.",
        severity="critical",
        check_result_ids=[failing.pk],
    )

    key, secret = create_api_key(user=admin, name="release fixture")
    log_in(key.key_id, secret)

    sample = catalog.store_failed_rows_sample(
        b'[1, null, "2026-11-01"]\n[2, null, "2026-11-02"]\n', by=admin, file_path="fixture/users.jsonl"
    )
    catalog.ingest_scan(
        catalog.ScanInput(
            data_timestamp=datetime(2026, 11, 1, 6, tzinfo=UTC),
            definition_name="release-fixture",
            logs=[{"level": "info", "message": "Scan summary: 1 check failed"}],
            results=[
                catalog.ResultInput(
                    data_source="postgres_app",
                    dataset="users",
                    check=catalog.CheckInput(name="missing_count(email) = 0", column="email"),
                    outcome="fail",
                    value=2,
                    samples=[
                        catalog.SampleRef(
                            sample.file_id, [{"name": "id"}, {"name": "email"}, {"name": "day"}], 2
                        )
                    ],
                )
            ],
        ),
        by=admin,
    )
    catalog.store_contract_upload("dataset: users\nchecks:\n  - missing:\n      column: email\n", by=admin)
    catalog.create_check_attribute_definition(
        by=admin,
        name="owner_team",
        attribute_type="singleselect",
        label="Owner team",
        allowed_values=["platform", "analytics"],
    )

    record_login_failure("vera@quell.example", "127.0.0.1")
    browser = Client()
    assert browser.login(email="vera@quell.example", password="quell-demo")

    return {"apiKeyId": key.key_id, "apiKeySecret": secret}


def link_inside_release() -> None:
    """A receiver links an incident to its ticket, through the callback URL a delivery carried."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    import django

    django.setup()

    from quell.integrations.models import IncidentLink
    from quell.integrations.services import set_incident_link

    link = IncidentLink.objects.order_by("id").first()
    assert link is not None, "no delivery carried a link-back URL"
    set_incident_link(link.token, url="https://tickets.example/browse/DQ-101", text="DQ-101")


if __name__ == "__main__":
    main()
