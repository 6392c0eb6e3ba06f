from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quell.accounts.models import ApiKey
from quell.accounts.queries import user_by_email
from quell.accounts.services import create_api_key
from quell.lib.errors import QuellError


class Command(BaseCommand):
    help = "Create and list API keys. `apikey create --email E [--name N]` prints {apiKeyId, apiKeySecret} as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key; its secret is shown once.")
        create.add_argument("--email", required=True)
        create.add_argument("--name", default="")
        listing = actions.add_parser("list", help="List a user's keys (never their secrets).")
        listing.add_argument("--email", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = user_by_email(options["email"])
            if options["action"] == "create":
                key, secret = create_api_key(user=user, name=options["name"])
                self.stdout.write(json.dumps({"apiKeyId": key.key_id, "apiKeySecret": secret}))
                return
        except QuellError as error:
            raise CommandError(error.message) from None
        for key in ApiKey.objects.filter(user=user):
            state = "revoked" if key.revoked_at else "active"
            self.stdout.write(f"{key.key_id}\t{key.name}\t{state}\t{key.created_at:%Y-%m-%d}")
