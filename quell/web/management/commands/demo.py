from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from quell.demo import DemoRefused, load_demo
from quell.lib.errors import QuellError


class Command(BaseCommand):
    help = (
        "Load the demo organisation into an empty database and print its logins. Acme Data: people in "
        "every role, four weeks of scans, incidents, two incident rules and a muted check."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = load_demo()
        except (DemoRefused, QuellError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Loaded the demo organisation {summary.organisation} in {summary.seconds:.1f} s: "
            f"{summary.data_sources} data sources, {summary.datasets} datasets, {summary.checks} checks, "
            f"{summary.results} check results, {summary.incidents} incidents."
        )
        self.stdout.write(f"Log in at {settings.BASE_URL}/login/ (start the server with `quell start`) as:")
        for line in summary.login_lines():
            self.stdout.write(line)
