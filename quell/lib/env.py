"""Typed readers for configuration from environment variables."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None


def envfloat(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quell"


# The SQLite database's name inside the data directory, when QUELL_DATABASE_URL is not set.
SQLITE_FILE = "quell.sqlite3"


def data_dir() -> Path:
    """The data directory, absolute: QUELL_DATA_DIR, or the default under XDG_DATA_HOME."""
    return Path(envstr("QUELL_DATA_DIR") or default_data_dir()).expanduser().resolve()


class EnvFileError(ValueError):
    """A settings file Quell cannot read; the message names the file and the line."""


def read_env_file(path: Path) -> dict[str, str]:
    """The QUELL_* settings of a file of `NAME=value` lines, as systemd's EnvironmentFile reads them.

    Blank lines and lines starting with # are skipped; a value may be wrapped in one pair of quotes.
    Anything else, or a name that is not a Quell setting, is an error: a typo must not pass silently.
    """
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not _ENV_NAME.fullmatch(name):
            raise EnvFileError(f"{path} line {number}: expected NAME=value, not {raw!r}.")
        if not name.startswith("QUELL_"):
            raise EnvFileError(f"{path} line {number}: {name} is not a Quell setting (QUELL_...).")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[name] = value
    return settings


def persistent_secret_key(data_dir: Path) -> str:
    """Read the secret key kept in the data directory, generating it on first start.

    A fixed key in the code would let anyone who read it forge sessions on every install, so each
    installation makes its own, readable only by the user that runs Quell.
    """
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: when two processes start at once, one writes and the other reads what it wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
