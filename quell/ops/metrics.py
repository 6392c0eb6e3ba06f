"""/metrics as scraped: every process's counters on this machine (quell.lib.metrics) and the queue
depths, read from the database at scrape time so that they describe the whole installation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from quell.lib import multiproc

logger = logging.getLogger(__name__)


class QueueDepth(Collector):
    """Gauges read from the database at each scrape: tasks waiting and deliveries unfinished or failed."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django_tasks_db.models import DBTaskResult

        from quell.integrations.models import Delivery, DeliveryStatus

        try:
            ready = DBTaskResult.objects.ready().count()
            waiting = DBTaskResult.objects.filter(status="READY").count() - ready
            running = DBTaskResult.objects.filter(status="RUNNING").count()
            oldest = (
                DBTaskResult.objects.ready()
                .order_by("enqueued_at")
                .values_list("enqueued_at", flat=True)
                .first()
            )
            deliveries = dict(
                Delivery.objects.filter(
                    status__in=[s.value for s in DeliveryStatus if s != DeliveryStatus.DELIVERED]
                )
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
        except DatabaseError:
            logger.warning("Queue depths left out of /metrics: the database did not answer", exc_info=True)
            return
        tasks = GaugeMetricFamily(
            "quell_tasks",
            "Background tasks by state: ready to run now, scheduled for later (retries), running.",
            labels=["state"],
        )
        tasks.add_metric(["ready"], ready)
        tasks.add_metric(["scheduled"], waiting)
        tasks.add_metric(["running"], running)
        yield tasks
        age = timedelta(0) if oldest is None else max(timezone.now() - oldest, timedelta(0))
        yield GaugeMetricFamily(
            "quell_tasks_oldest_ready_age_seconds",
            "How long the oldest task ready to run has waited (0 when none waits).",
            value=age.total_seconds(),
        )
        family = GaugeMetricFamily(
            "quell_deliveries",
            "Deliveries to integrations that are not delivered, by status.",
            labels=["status"],
        )
        for status in (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING, DeliveryStatus.FAILED):
            family.add_metric([status.value], deliveries.get(status.value, 0))
        yield family


def render() -> bytes:
    """The exposition for /metrics: every process's counters on this machine, and the queue depths."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiproc.configure()))
    registry.register(QueueDepth())
    return generate_latest(registry)
