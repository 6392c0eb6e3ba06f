"""Worker heartbeats: each `quell worker` process keeps a WorkerHeartbeat row fresh while it runs.

/readyz reads the newest one. The row is touched by a shared periodic job (every worker runs it for
itself) and deleted when the worker exits cleanly; a worker that was killed leaves a row that simply
grows old.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from django.db import DatabaseError
from django.utils import timezone

from quell.ops.models import WorkerHeartbeat
from quell.ops.periodic import process_name

logger = logging.getLogger(__name__)

# beat() and stop() run in different threads; the lock keeps a late beat from bringing a row back.
_lock = threading.Lock()
_name: tuple[int, str] | None = None
_stopped = False


def this_process() -> str:
    global _name
    if _name is None or _name[0] != os.getpid():
        _name = (os.getpid(), process_name())
    return _name[1]


def beat() -> None:
    """Record that this worker is alive now."""
    with _lock:
        if _stopped:
            return
        now = timezone.now()
        name = this_process()
        if not WorkerHeartbeat.objects.filter(name=name).update(seen_at=now):
            WorkerHeartbeat.objects.create(
                name=name, hostname=socket.gethostname()[:255], pid=os.getpid(), started_at=now, seen_at=now
            )


def stop() -> None:
    """This worker is leaving: remove its row, and write no more."""
    global _stopped
    with _lock:
        _stopped = True
        try:
            WorkerHeartbeat.objects.filter(name=this_process()).delete()
        except DatabaseError:
            # The row then ages out of /readyz's window like a killed worker's would.
            logger.warning("Could not remove this worker's heartbeat", exc_info=True)
