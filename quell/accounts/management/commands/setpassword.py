from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quell.accounts.queries import user_by_email
from quell.accounts.services import set_password
from quell.lib.errors import QuellError


class Command(BaseCommand):
    help = (
        "Give a user a new password (someone who lost theirs, the only admin too). Their sessions end. "
        "Prompts twice, or reads one line from standard input with --password-stdin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input (for scripts); no prompt.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = self._read_stdin() if options["password_stdin"] else self._prompt()
        try:
            user = user_by_email(options["email"])
            set_password(user.pk, password, by=None)
        except QuellError as error:
            raise CommandError(error.message) from None
        note = (
            "" if user.is_active else " They are deactivated: reactivate them in Settings → Users to log in."
        )
        self.stdout.write(f"{user.email} has a new password.{note}")

    def _read_stdin(self) -> str:
        # Only the line ending goes: spaces may be part of a passphrase.
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on standard input.")
        return password

    def _prompt(self) -> str:
        # A password on the command line would land in the shell history and the process list.
        try:
            password = getpass.getpass("New password: ")
            again = getpass.getpass("New password again: ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("No password given.") from None
        if password != again:
            raise CommandError("The two passwords differ; nothing was changed.")
        if not password:
            raise CommandError("No password given.")
        return password
