"""The `quell` command: scriptable bootstrap without prompts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from psycopg import sql

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import ApiKey, GlobalRole, User
from tests.conftest import COMMAND_LINE_ONLY, OWN_SQLITE_DATA_DIR


def run_quell(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    env["QUELL_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "quell", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_createadmin_makes_a_global_admin(builtin_rows: None) -> None:
    out = StringIO()
    call_command("createadmin", "--email", "Root@Example.com", "--password", "long enough secret", stdout=out)
    user = User.objects.get(email="root@example.com")
    assert user.global_role == GlobalRole.ADMIN
    assert user.check_password("long enough secret")
    assert "root@example.com is an admin" in out.getvalue()


def test_createadmin_promotes_an_existing_user(builtin_rows: None) -> None:
    User.objects.create_user("bob@example.com", "old password 1")
    call_command(
        "createadmin", "--email", "bob@example.com", "--password", "new password 22", stdout=StringIO()
    )
    bob = User.objects.get(email="bob@example.com")
    assert bob.is_admin
    assert bob.check_password("new password 22")


def test_createadmin_refuses_a_weak_password_and_creates_nobody(builtin_rows: None) -> None:
    with pytest.raises(CommandError, match="too short"):
        call_command("createadmin", "--email", "root@example.com", "--password", "short")
    assert not User.objects.exists()


def test_apikey_create_prints_json_and_stores_only_a_hash(builtin_rows: None) -> None:
    User.objects.create_user("ci@example.com", "pw for ci 123")
    out = StringIO()
    call_command("apikey", "create", "--email", "ci@example.com", stdout=out)
    printed = json.loads(out.getvalue())
    assert set(printed) == {"apiKeyId", "apiKeySecret"}
    key = ApiKey.objects.get(key_id=printed["apiKeyId"])
    assert printed["apiKeySecret"] not in key.secret_hash
    assert user_for_api_key(printed["apiKeyId"], printed["apiKeySecret"]) == key.user
    assert user_for_api_key(printed["apiKeyId"], "wrong") is None


def test_apikey_create_for_an_unknown_email_fails_clearly(builtin_rows: None) -> None:
    with pytest.raises(CommandError, match=r"no user nobody@example\.com"):
        call_command("apikey", "create", "--email", "nobody@example.com")


def test_a_revoked_key_or_a_deactivated_user_no_longer_authenticates(builtin_rows: None) -> None:
    user = User.objects.create_user("ci@example.com", "pw for ci 123")
    key, secret = ApiKey.issue(user)
    user.is_active = False
    user.save()
    assert user_for_api_key(key.key_id, secret) is None
    user.is_active = True
    user.save()
    key.revoked_at = key.created_at
    key.save()
    assert user_for_api_key(key.key_id, secret) is None


@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_the_quell_command_bootstraps_a_fresh_data_directory(tmp_path: Path) -> None:
    migrated = run_quell(tmp_path, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "quell.sqlite3").exists()

    secret_key = (tmp_path / "secret_key").read_text()
    assert len(secret_key) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"

    admin = run_quell(tmp_path, "createadmin", "--email", "ops@example.com", "--password", "a good password")
    assert admin.returncode == 0, admin.stderr
    key = run_quell(tmp_path, "apikey", "create", "--email", "ops@example.com")
    assert key.returncode == 0, key.stderr
    assert set(json.loads(key.stdout)) == {"apiKeyId", "apiKeySecret"}

    # The generated key is kept: a second start must not sign everyone out.
    assert (tmp_path / "secret_key").read_text() == secret_key


@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_a_configured_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    env |= {"QUELL_DATA_DIR": str(tmp_path), "QUELL_SECRET_KEY": "from-the-environment-" * 3}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        env=env | {"DJANGO_SETTINGS_MODULE": "quell.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "from-the-environment-" * 3
    assert not (tmp_path / "secret_key").exists()


# --- The `quell` command run as a new user would, from a folder ------------------------------------

REPO = Path(__file__).resolve().parents[1]
QUELL = Path(sys.executable).with_name("quell")


def quell_in(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/quell ARGS` run from `folder` with no QUELL_* settings and a home of its own."""
    home = folder / "home"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    clean |= {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"), **env}
    return subprocess.run(
        [str(QUELL), *args],
        cwd=folder,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def default_data_dir_of(folder: Path) -> Path:
    return folder / "home" / ".local" / "share" / "quell"


@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_after_the_quick_start_the_readmes_commands_act_on_its_installation(tmp_path: Path) -> None:
    # The quick start as it runs, with the installation and the server left out.
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "quickstart", tmp_path / "scripts" / "quickstart")
    (tmp_path / "scripts" / "_venv.sh").write_text("ensure_venv() { :; }\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "quell").write_text('#!/bin/sh\necho started "$@"\n')
    (tmp_path / ".venv" / "bin" / "quell").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    quickstart = subprocess.run(
        ["bash", "scripts/quickstart"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert "started start --demo" in quickstart.stdout
    assert f"QUELL_DATA_DIR={tmp_path / 'quell-data'}" in (tmp_path / "quell.env").read_text()

    migrated = quell_in(tmp_path, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    assert f"Using the settings in {tmp_path / 'quell.env'} (QUELL_DATA_DIR)." in migrated.stderr
    admin = quell_in(
        tmp_path, "createadmin", "--email", "admin@quell.example", "--password", "a good password"
    )
    assert admin.returncode == 0, admin.stderr
    key = quell_in(tmp_path, "apikey", "create", "--email", "admin@quell.example")
    assert key.returncode == 0, key.stderr
    assert set(json.loads(key.stdout)) == {"apiKeyId", "apiKeySecret"}

    assert (tmp_path / "quell-data" / "quell.sqlite3").exists()
    assert not default_data_dir_of(tmp_path).exists()


def test_the_environment_wins_over_the_folder_file_and_quell_says_so(tmp_path: Path) -> None:
    (tmp_path / "quell.env").write_text(f"# comment\n\nQUELL_DATA_DIR={tmp_path / 'from-file'}\n")

    refused = quell_in(tmp_path, "apikey", "create", "--email", "a@example.com", QUELL_DATA_DIR="elsewhere")

    assert "the environment's QUELL_DATA_DIR wins over the file's" in refused.stderr
    assert f"data directory {tmp_path / 'elsewhere'}, from QUELL_DATA_DIR" in refused.stderr
    assert not (tmp_path / "from-file").exists()


def test_a_folder_file_with_a_line_quell_cannot_read_stops_it_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "quell.env").write_text("QUELL_DATA_DIR=data\nPATH=/tmp\n")

    refused = quell_in(tmp_path, "check")

    assert refused.returncode == 2
    assert (
        refused.stderr.strip() == f"{tmp_path / 'quell.env'} line 2: PATH is not a Quell setting (QUELL_...)."
    )


def test_a_command_without_a_database_says_so_in_one_line_and_creates_nothing(tmp_path: Path) -> None:
    refused = quell_in(tmp_path, "apikey", "create", "--email", "admin@quell.example")

    assert refused.returncode == 1
    data_dir = default_data_dir_of(tmp_path)
    assert refused.stderr.strip() == (
        f"There is no Quell database at {data_dir / 'quell.sqlite3'} (data directory {data_dir}, the "
        "default: neither QUELL_DATA_DIR nor ./quell.env sets one). Run `quell migrate` to create it, or "
        "run quell where the installation's quell.env is, or set QUELL_DATA_DIR to its data directory."
    )
    assert not data_dir.exists()


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for a database without a single table, on the suite's database engine."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        (tmp_path / "data").mkdir()
        sqlite3.connect(tmp_path / "data" / "quell.sqlite3").close()
        yield {"QUELL_DATA_DIR": str(tmp_path / "data")}
        return
    name = f"{db['NAME']}_unmigrated"
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        try:
            yield {
                "QUELL_DATA_DIR": str(tmp_path / "data"),
                "QUELL_DATABASE_URL": f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}",
            }
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize(
    "command",
    [
        ["apikey", "create", "--email", "admin@quell.example"],
        ["createadmin", "--email", "admin@quell.example", "--password", "a good password"],
        # One of Django's own, which Quell does not check first.
        ["dumpdata", "accounts.user"],
    ],
)
def test_a_command_against_an_unmigrated_database_says_so_in_one_line(
    tmp_path: Path, empty_database: dict[str, str], command: list[str]
) -> None:
    refused = quell_in(tmp_path, *command, **empty_database)

    assert refused.returncode == 1
    db = settings.DATABASES["default"]
    if "QUELL_DATABASE_URL" in empty_database:
        database = f"{db['NAME']}_unmigrated on {db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    else:
        database = str(tmp_path / "data" / "quell.sqlite3")
    assert refused.stderr.strip() == (
        f"The database {database} (data directory {tmp_path / 'data'}, from QUELL_DATA_DIR) is not "
        "migrated: run `quell migrate` first."
    )


# --- Help ---------------------------------------------------------------------------------------------


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
@pytest.mark.parametrize("asking", [[], ["help"], ["--help"]])
def test_quell_help_lists_quells_own_commands_by_group_with_a_line_each(
    tmp_path: Path, asking: list[str]
) -> None:
    shown = quell_in(tmp_path, *asking, QUELL_DATA_DIR=str(tmp_path / "data"))

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    groups = [line for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    assert groups == ["Run:", "Set up:", "Data:", "Operations:"]
    commands = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.startswith("  ")}
    assert set(commands) == {
        "start", "serve", "worker",
        "migrate", "createadmin", "apikey", "setpassword",
        "ingest", "demo", "loadgen", "recount",
        "backup", "restore", "housekeeping", "check",
    }  # fmt: skip
    assert commands["apikey"] == "Create and list API keys."
    assert commands["serve"] == "Run Quell's web server (gunicorn) with several processes."
    assert "startproject" not in shown.stdout
    assert "`quell help django`" in shown.stdout


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
def test_quell_help_django_and_a_commands_own_help_still_answer(tmp_path: Path) -> None:
    env = {"QUELL_DATA_DIR": str(tmp_path / "data")}
    everything = quell_in(tmp_path, "help", "django", **env)
    assert everything.returncode == 0, everything.stderr
    assert "startproject" in everything.stdout
    assert "[accounts]" in everything.stdout

    for asking in (["help", "apikey"], ["apikey", "--help"]):
        one = quell_in(tmp_path, *asking, **env)
        assert one.returncode == 0, one.stderr
        assert one.stdout.startswith("usage: quell apikey")
