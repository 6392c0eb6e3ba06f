from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per running `quell worker` process, touched every few seconds while it lives.

    /readyz reads the newest `seen_at`; rows of workers that stopped are removed on a clean exit and
    pruned by housekeeping otherwise.
    """

    name = models.CharField(max_length=200, unique=True)  # "host:pid:start", unique per process
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        indexes = [
            # /readyz: the newest heartbeat; housekeeping: heartbeats not seen for a while.
            models.Index(fields=["-seen_at"], name="heartbeat_newest"),
        ]

    def __str__(self) -> str:
        return self.name


class PeriodicJob(models.Model):
    """A job that at most one worker of the installation runs at a time (see quell.ops.periodic).

    A worker claims the job with a conditional UPDATE on `lease_until`, so several workers on several
    machines never run it together, and a worker that dies mid-run gives it up when the lease ends.
    """

    name = models.CharField(max_length=100, primary_key=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=200, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name
