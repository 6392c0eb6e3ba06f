from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quell.accounts.services import set_admin
from quell.lib.errors import QuellError


class Command(BaseCommand):
    help = "Create a global admin, or make an existing user admin with this password. Never prompts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = set_admin(options["email"], options["password"])
        except QuellError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{user.email} is an admin.")
