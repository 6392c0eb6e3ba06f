"""Periodic jobs of `quell worker` run: the delivery sweep, heartbeats, housekeeping (registered through
quell.lib.periodic, so that the apps that own them need not import this runner).

Each job is registered with an interval. `shared` jobs run in every worker process (a heartbeat
belongs to its process); exclusive jobs run in one worker of the installation at a time, claimed
through a PeriodicJob row with a conditional UPDATE, so adding workers never multiplies the work.
Jobs run one after another in a single thread that ends with the process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from quell.lib.periodic import Job, registered
from quell.ops.models import PeriodicJob

logger = logging.getLogger(__name__)

# How often the runner wakes to see whether a job is due.
TICK_SECONDS = 1.0


def process_name() -> str:
    """A name for this process that is unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def claim(name: str, owner: str, lease_seconds: float, interval: float) -> bool:
    """Take the job's lease if no other worker holds it and it has not run within `interval`."""
    now = timezone.now()
    PeriodicJob.objects.get_or_create(name=name)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q(last_started_at__isnull=True) | Q(last_started_at__lte=now - timedelta(seconds=interval))
    return bool(
        PeriodicJob.objects.filter(free & due, name=name).update(
            lease_until=now + timedelta(seconds=lease_seconds), leased_by=owner, last_started_at=now
        )
    )


def release(name: str, owner: str, error: str = "") -> None:
    PeriodicJob.objects.filter(name=name, leased_by=owner).update(
        lease_until=None, last_finished_at=timezone.now(), last_error=error[:10_000]
    )


def run_job(job: Job, owner: str) -> None:
    if job.shared:
        job.run()
        return
    if not claim(job.name, owner, job.lease_seconds, job.interval):
        return
    try:
        job.run()
    except Exception as error:
        release(job.name, owner, error=repr(error))
        raise
    release(job.name, owner)


def run_due(owner: str, now: float | None = None) -> None:
    """Run every job whose time has come; a failing job is logged and tried again at its next turn."""
    now = time.monotonic() if now is None else now
    for job in registered().values():
        if now < job.next_at:
            continue
        job.next_at = now + job.interval
        try:
            close_old_connections()
            run_job(job, owner)
        except Exception:
            logger.exception("Periodic job %s failed; it runs again in %s s", job.name, job.interval)
        finally:
            close_old_connections()


def run_periodic(stop: threading.Event, owner: str) -> None:
    while not stop.is_set():
        run_due(owner)
        stop.wait(TICK_SECONDS)


def start_periodic(owner: str | None = None) -> threading.Event:
    """Run the registered jobs in a daemon thread until the returned event is set."""
    stop = threading.Event()
    threading.Thread(
        target=run_periodic, args=(stop, owner or process_name()), name="quell-periodic", daemon=True
    ).start()
    return stop
