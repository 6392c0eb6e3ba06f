"""QUELL_EMAIL_URL becomes Django's email settings, or a refusal that says what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quell.lib.mailurl import CONSOLE_BACKEND, OFF_BACKEND, SMTP_BACKEND, EmailUrlError, parse_email_url
from tests.conftest import COMMAND_LINE_ONLY


def test_no_url_means_email_is_off() -> None:
    config = parse_email_url("  ")

    assert config.backend == OFF_BACKEND
    assert config.enabled is False
    assert config.describe() == "off"


def test_console_prints_messages() -> None:
    config = parse_email_url("console://")

    assert config.backend == CONSOLE_BACKEND
    assert config.enabled is True


def test_smtp_uses_starttls_on_port_587_and_decodes_the_login() -> None:
    config = parse_email_url("smtp://quell%40example.com:p%40ss%3Aword@mail.example.com")

    assert (config.backend, config.host, config.port) == (SMTP_BACKEND, "mail.example.com", 587)
    assert (config.username, config.password) == ("quell@example.com", "p@ss:word")
    assert (config.use_tls, config.use_ssl, config.timeout) == (True, False, 10)
    assert config.describe() == "SMTP to mail.example.com:587 (STARTTLS, logging in as quell@example.com)"
    assert "p@ss" not in config.describe()


def test_smtps_uses_implicit_tls_on_port_465() -> None:
    config = parse_email_url("smtps://mail.example.com?timeout=30")

    assert (config.port, config.use_tls, config.use_ssl, config.timeout) == (465, False, True, 30)


def test_a_local_relay_without_tls_says_so() -> None:
    config = parse_email_url("smtp://127.0.0.1:25?starttls=false")

    assert (config.port, config.use_tls, config.use_ssl) == (25, False, False)
    assert config.describe() == "SMTP to 127.0.0.1:25 (no TLS)"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("imap://mail.example.com", "must start with smtp://, smtps:// or console://, not 'imap://'"),
        ("mail.example.com:587", "must start with smtp://"),
        ("smtp://", "names no host"),
        ("smtp://mail.example.com:99999", "port must be a number"),
        ("smtp://mail.example.com?tls=true", "options Quell does not know: tls"),
        ("smtps://mail.example.com?starttls=false", "options Quell does not know: starttls"),
        ("smtp://mail.example.com?timeout=soon", "timeout must be a whole number"),
        ("smtp://mail.example.com?starttls=maybe", "starttls must be true or false"),
    ],
)
def test_a_url_quell_cannot_use_is_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(EmailUrlError, match=reason):
        parse_email_url(url)


def _quell(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    return subprocess.run(
        [sys.executable, "-m", "quell", "check"],
        env={**clean, "QUELL_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.one_database(reason=COMMAND_LINE_ONLY)
def test_quell_will_not_start_with_an_email_url_or_sender_it_cannot_use(tmp_path: Path) -> None:
    bad_url = _quell(tmp_path, QUELL_EMAIL_URL="smtp://mail.example.com?tls=yes")
    bad_sender = _quell(tmp_path, QUELL_EMAIL_URL="console://", QUELL_EMAIL_FROM="Quell")
    fine = _quell(tmp_path, QUELL_EMAIL_URL="console://", QUELL_EMAIL_FROM="Quell <quell@example.com>")

    assert bad_url.returncode != 0
    assert "QUELL_EMAIL_URL has options Quell does not know: tls" in bad_url.stderr
    assert bad_sender.returncode != 0
    assert "QUELL_EMAIL_FROM must be an address" in bad_sender.stderr
    assert fine.returncode == 0, fine.stderr
