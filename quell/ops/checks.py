"""Quell's own system checks, run by `quell check` (those tagged deploy by `quell check --deploy`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from quell.ops.datadir import readable_by_others, sqlite_files

SHOWN = 5


@checks.register(checks.Tags.security, deploy=True)
def data_dir_is_private(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The data directory and everything in it (the SQLite database, wherever it is) are 700 and 600."""
    data_dir = Path(settings.DATA_DIR)
    loose = readable_by_others(data_dir, sqlite_files(settings.DATABASES["default"]))
    if not loose:
        return []
    shown = ", ".join(f"{path} ({mode:o})" for path, mode in list(loose.items())[:SHOWN])
    more = f" and {len(loose) - SHOWN} more" if len(loose) > SHOWN else ""
    return [
        checks.Warning(
            f"Other users may read Quell's data (the database holds webhook secrets, header values, "
            f"Slack and Teams URLs and sessions): {shown}{more}.",
            hint=(
                f"Quell makes them private (folders 700, files 600) when it starts, as the user it runs "
                f"as; these it could not change. Give them to that user (chown -R) or run "
                f"`chmod -R go= {data_dir}`."
            ),
            id="ops.W001",
        )
    ]
