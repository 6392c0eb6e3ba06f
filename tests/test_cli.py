"""The `quell` command: scriptable bootstrap without prompts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import ApiKey, GlobalRole, User


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
