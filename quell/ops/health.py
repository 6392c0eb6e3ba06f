"""Liveness and readiness: what /healthz and /readyz answer.

Readiness means this process can serve: the database answers, its schema matches the code (no
migration left to apply), and a `quell worker` has reported in recently, because without one no
notification goes out. The worker check can be turned off for a web tier deployed without workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from quell.ops.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "message": self.message}


_migrations_applied = False


def forget_migrations() -> None:
    """Check the migrations again at the next probe (once applied they are remembered per process)."""
    global _migrations_applied
    _migrations_applied = False


def check_database() -> Check:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        # The error names hosts and users; it belongs in the log, not in an unauthenticated answer.
        logger.warning("Readiness: the database did not answer", exc_info=True)
        return Check(False, "The database did not answer.")
    return Check(True, "The database answers.")


def check_migrations() -> Check:
    global _migrations_applied
    if _migrations_applied:
        return Check(True, "Every migration is applied.")
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        logger.warning("Readiness: could not read the applied migrations", exc_info=True)
        return Check(False, "Could not read the applied migrations.")
    if plan:
        count = f"{len(plan)} migration is" if len(plan) == 1 else f"{len(plan)} migrations are"
        return Check(False, f"{count} not applied yet; run `quell migrate`.")
    # Migrations are only ever added by a deploy, which restarts this process.
    _migrations_applied = True
    return Check(True, "Every migration is applied.")


def check_worker(max_age_seconds: float) -> Check:
    try:
        newest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    except DatabaseError:
        logger.warning("Readiness: could not read worker heartbeats", exc_info=True)
        return Check(False, "Could not read worker heartbeats.")
    if newest is None:
        return Check(False, "No `quell worker` is running.")
    age = timezone.now() - newest
    if age > timedelta(seconds=max_age_seconds):
        return Check(False, f"No `quell worker` has reported in the last {max_age_seconds:g} s.")
    return Check(True, f"A worker reported {max(age.total_seconds(), 0):.0f} s ago.")


def readiness() -> dict[str, Check]:
    """Each readiness check by name; the later ones are skipped when the database does not answer."""
    checks = {"database": check_database()}
    max_age = settings.READY_WORKER_SECONDS
    if not checks["database"].ok:
        skipped = Check(False, "Not checked: the database did not answer.")
        checks["migrations"] = skipped
        if max_age > 0:
            checks["worker"] = skipped
        return checks
    checks["migrations"] = check_migrations()
    if max_age > 0:
        checks["worker"] = check_worker(max_age)
    return checks
