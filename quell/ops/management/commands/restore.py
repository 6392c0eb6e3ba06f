from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from quell.ops.backup import BackupError, restore_backup, sqlite_database


class Command(BaseCommand):
    # The system checks load the whole URL configuration, which takes seconds and has no bearing here.
    requires_system_checks: list[str] = []
    help = (
        "Restore a backup made by `quell backup`, replacing this installation's SQLite database. The "
        "backup is checked first, the generated secret key comes back too, and a database from an older "
        "Quell is migrated. "
        "Stop the web servers and workers first. On PostgreSQL use pg_restore (docs/operations.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The backup file.")
        parser.add_argument(
            "--force", action="store_true", help="Restore even though a worker's heartbeat is recent."
        )
        parser.add_argument(
            "--no-migrate", action="store_true", help="Leave an older backup's schema as it is."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            database = sqlite_database(connections["default"].settings_dict, action="restore")
            # This process lets go of the file it is about to replace.
            connections.close_all()
            restored = restore_backup(
                options["path"], database, data_dir=Path(settings.DATA_DIR), force=options["force"]
            )
        except BackupError as error:
            raise CommandError(str(error)) from None
        manifest = restored.manifest
        self.stdout.write(
            f"Restored {database} from {options['path']} "
            f"(taken {manifest.get('createdAt')} by Quell {manifest.get('quellVersion')})."
        )
        if restored.previous is not None:
            self.stdout.write(
                f"The database it replaced is kept as {restored.previous}; remove it when done."
            )
        if restored.secret_key_restored:
            self.stdout.write("Restored the secret key into the data directory.")
        elif manifest.get("secretKey") == "environment":
            self.stdout.write(
                "The backed-up installation took its secret key from QUELL_SECRET_KEY: set the same value "
                "here, or everyone must log in again."
            )
        if restored.pending:
            if options["no_migrate"]:
                self.stdout.write(
                    f"The backup is from an older Quell: run `quell migrate` before starting "
                    f"({len(restored.pending)} migrations to apply)."
                )
            else:
                self.stdout.write(f"Applying {len(restored.pending)} migrations the backup predates.")
                call_command("migrate", interactive=False, verbosity=0, skip_checks=True)
        self.stdout.write("Start Quell again.")
