from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from quell.lib.env import envstr
from quell.ops.backup import BackupError, create_backup, sqlite_database


class Command(BaseCommand):
    # The system checks load the whole URL configuration, which takes seconds and has no bearing here.
    requires_system_checks: list[str] = []
    help = (
        "Back up a SQLite installation while it runs, into one tar file. It holds a consistent copy of "
        "the database, checked, with the generated secret key and a manifest (gzip when PATH ends in "
        ".gz). PATH may "
        "be a directory, which gets a dated file. On PostgreSQL use pg_dump (docs/operations.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The backup file to write, or a directory for it.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            database = sqlite_database(connections["default"].settings_dict, action="backup")
            backup = create_backup(
                database,
                options["path"],
                data_dir=Path(settings.DATA_DIR),
                secret_key_from_env=bool(envstr("QUELL_SECRET_KEY")),
            )
        except BackupError as error:
            raise CommandError(str(error)) from None
        manifest = backup.manifest
        self.stdout.write(
            f"Wrote {backup.path} ({manifest['database']['bytes']} bytes of database, checked)."
        )
        if manifest["secretKey"] == "environment":
            self.stdout.write(
                "This installation takes its secret key from QUELL_SECRET_KEY, which is not in the backup: "
                "keep it with the backup."
            )
