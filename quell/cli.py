"""The `quell` command: Django's management commands under Quell's name, with Quell's own front door.

Before any command runs:
- `quell.env` in the current folder (written by scripts/quickstart) supplies QUELL_* settings the
  environment does not set, so the README's commands, run where the quick start ran, act on the
  installation it made. It is read here, not in settings: tests and WSGI servers never see a stray one.
- `quell`, `quell help` and `quell --help` list Quell's own commands by group; `quell help django`
  lists Django's too, and `quell help <command>` and `quell <command> --help` are Django's as ever.
- A command that needs the database refuses, in one line naming the data directory and the database,
  when that database is missing or not migrated, before it creates an empty SQLite file anywhere.

The checks that run before Django is set up must not import it: settings create the data directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from quell.lib.env import SQLITE_FILE, EnvFileError, data_dir, envstr, read_env_file

FOLDER_FILE = "quell.env"
ALL_COMMANDS = ("django", "--all")


@dataclass(frozen=True)
class Entry:
    name: str
    needs_database: bool
    # Django's own commands speak of "the Django project"; Quell's take the first sentence of `help`.
    summary: str = ""


GROUPS: dict[str, tuple[Entry, ...]] = {
    "Run": (
        Entry("start", needs_database=False),
        Entry("serve", needs_database=True),
        Entry("worker", needs_database=True),
    ),
    "Set up": (
        Entry("migrate", False, "Create the database's tables, or bring them up to date after an upgrade."),
        Entry("createadmin", needs_database=True),
        Entry("apikey", needs_database=True),
        Entry("setpassword", needs_database=True),
    ),
    "Data": (
        Entry("ingest", needs_database=True),
        Entry("demo", needs_database=True),
        Entry("loadgen", needs_database=True),
        Entry("recount", needs_database=True),
    ),
    "Operations": (
        # An upgrade backs up before it migrates; a missing database is the command's own message.
        Entry("backup", needs_database=False),
        Entry("restore", needs_database=False),
        Entry("housekeeping", needs_database=True),
        Entry("check", False, "Check the configuration; with --deploy, what production needs too."),
    ),
}
ENTRIES = {entry.name: entry for group in GROUPS.values() for entry in group}
# Django's commands that do not read Quell's tables: they work on an empty or new database.
WITHOUT_DATABASE = frozenset(
    {
        "check", "collectstatic", "compilemessages", "createcachetable", "dbshell", "diffsettings",
        "findstatic", "help", "inspectdb", "makemessages", "makemigrations", "migrate",
        "optimizemigration", "runserver", "sendtestemail", "shell", "showmigrations", "sqlmigrate",
        "squashmigrations", "startapp", "startproject", "test", "testserver",
    }
)  # fmt: skip


@dataclass(frozen=True)
class FolderSettings:
    """What `quell.env` in the current folder contributed."""

    path: Path | None = None
    applied: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()


def apply_folder_settings(folder: Path) -> FolderSettings:
    """Put the settings of `folder/quell.env` into the environment where it does not already set them."""
    path = folder / FOLDER_FILE
    try:
        found = path.stat()
    except OSError:
        return FolderSettings()
    if not stat.S_ISREG(found.st_mode):
        return FolderSettings()
    # Like git's safe.directory: a file someone else could have written does not choose our database.
    if found.st_uid != os.getuid() or found.st_mode & stat.S_IWOTH:
        say(f"Ignoring {path}: it must belong to you and not be writable by others.")
        return FolderSettings()
    try:
        settings = read_env_file(path)
    except (EnvFileError, OSError) as error:
        fail(str(error), code=2)
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text.", code=2)
    applied, overridden = [], []
    for name, value in settings.items():
        if name not in os.environ:
            os.environ[name] = value
            applied.append(name)
        elif os.environ[name] != value:
            overridden.append(name)
    folder_settings = FolderSettings(path.resolve(), tuple(applied), tuple(overridden))
    # Processes `quell start` runs inherit the same values: they find nothing new and stay quiet.
    if applied or overridden:
        parts = [", ".join(applied)] if applied else []
        if overridden:
            parts.append(f"the environment's {', '.join(overridden)} wins over the file's")
        say(f"Using the settings in {folder_settings.path} ({'; '.join(parts)}).")
    return folder_settings


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fail(line: str, code: int = 1) -> NoReturn:
    say(line)
    raise SystemExit(code)


# --- Help ------------------------------------------------------------------------------------------


def wants_quell_help(argv: list[str]) -> bool:
    return argv in ([], ["help"], ["-h"], ["--help"])


def wants_django_help(argv: list[str]) -> bool:
    return len(argv) == 2 and argv[0] == "help" and argv[1] in ALL_COMMANDS


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def quell_help() -> str:
    """Quell's commands by group, one line each, from each command's `help`."""
    import django
    from django.core.management import get_commands, load_command_class

    django.setup()
    commands = get_commands()
    width = min(shutil.get_terminal_size((110, 24)).columns, 110)
    name_width = max(len(name) for name in ENTRIES) + 4
    lines = ["Usage: quell <command> [options]", ""]
    for group, entries in GROUPS.items():
        lines.append(f"{group}:")
        for entry in entries:
            summary = entry.summary or first_sentence(
                load_command_class(commands[entry.name], entry.name).help
            )
            lines.append(
                textwrap.fill(
                    summary,
                    width=max(width, name_width + 30),
                    initial_indent=f"  {entry.name}".ljust(name_width),
                    subsequent_indent=" " * name_width,
                )
            )
        lines.append("")
    lines += [
        "`quell help <command>` (or `quell <command> --help`) shows a command's options;",
        "`quell help django` lists every command, Django's own too.",
        f"Settings come from QUELL_* environment variables, then ./{FOLDER_FILE} (README: Configuration).",
    ]
    return "\n".join(lines)


# --- The database ----------------------------------------------------------------------------------


def data_dir_source(folder: FolderSettings) -> str:
    if "QUELL_DATA_DIR" in folder.applied:
        return f"from {folder.path}"
    if envstr("QUELL_DATA_DIR"):
        return "from QUELL_DATA_DIR"
    return f"the default: neither QUELL_DATA_DIR nor ./{FOLDER_FILE} sets one"


def sqlite_file() -> Path | None:
    """The SQLite file the settings will open, or None for a database server."""
    url = envstr("QUELL_DATABASE_URL")
    if not url:
        return data_dir() / SQLITE_FILE
    if not url.startswith("sqlite:"):
        return None
    import dj_database_url

    name = str(dj_database_url.parse(url).get("NAME") or "")
    return None if not name or name == ":memory:" else Path(name).expanduser().resolve()


def refuse_a_missing_database(folder: FolderSettings) -> None:
    """Stop before Django would create an empty SQLite file (and the data directory) by connecting."""
    database = sqlite_file()
    if database is not None and not database.exists():
        fail(
            f"There is no Quell database at {database} (data directory {data_dir()}, "
            f"{data_dir_source(folder)}). Run `quell migrate` to create it, or run quell where the "
            f"installation's {FOLDER_FILE} is, or set QUELL_DATA_DIR to its data directory."
        )


def unmigrated_database_message(folder: FolderSettings) -> str:
    """One line when the database lacks migrations this Quell expects, or "" when it has them all."""
    from django.conf import settings
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return ""
    config = settings.DATABASES[DEFAULT_DB_ALIAS]
    if connection.vendor == "sqlite":
        database = str(config["NAME"])
    else:
        database = (
            f"{config['NAME']} on {config.get('HOST') or 'localhost'}:{config.get('PORT') or 'default port'}"
        )
    where = f"The database {database} (data directory {settings.DATA_DIR}, {data_dir_source(folder)})"
    if not MigrationRecorder(connection).has_table():
        return f"{where} is not migrated: run `quell migrate` first."
    names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"{where} lacks {len(names)} migration(s) this version of Quell expects ({shown}): "
        "run `quell migrate` first."
    )


def refuse_an_unmigrated_database(folder: FolderSettings) -> None:
    from django.db import DatabaseError

    try:
        message = unmigrated_database_message(folder)
    except DatabaseError:
        # An unreachable server or a damaged file: the command itself says what went wrong.
        return
    if message:
        fail(message)


def needs_database(name: str) -> bool:
    """Whether command `name` reads Quell's tables (Django must be set up for Django's commands)."""
    from django.core.management import get_commands

    entry = ENTRIES.get(name)
    if entry is not None:
        return entry.needs_database
    return name in get_commands() and name not in WITHOUT_DATABASE


# --- Entry point -----------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    folder = apply_folder_settings(Path.cwd())
    if wants_quell_help(argv):
        print(quell_help())
        return

    import django
    from django.core.management import execute_from_command_line

    if wants_django_help(argv):
        execute_from_command_line(["quell", "help"])
        return
    checks_database = "-h" not in argv and "--help" not in argv
    entry = ENTRIES.get(argv[0])
    if checks_database and entry is not None and entry.needs_database:
        # Before settings, which make the data directory: a mistyped one is not left behind.
        refuse_a_missing_database(folder)
    django.setup()
    if checks_database and needs_database(argv[0]):
        refuse_a_missing_database(folder)
        refuse_an_unmigrated_database(folder)
    execute_from_command_line(["quell", *argv])
