"""Prometheus metrics: what each process counts (the queue depths read at scrape time are quell.ops.metrics's).

Counters and histograms live in prometheus_client's multiprocess files (see quell.lib.multiproc), so
a scrape of any web process returns the sums over every Quell process on that machine, including the
deliveries counted by `quell worker`. Queue depths are read from the database at scrape time and so
describe the whole installation. Every label has a small, fixed set of values: routes are URL
patterns, never paths.
"""

from __future__ import annotations

from collections.abc import Iterable

from quell.lib import multiproc

# prometheus_client picks per-process file storage at import, so the directory must be set first.
multiproc.configure()

from prometheus_client import Counter, Histogram, multiprocess  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram(
    "quell_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DELIVERY_ATTEMPTS = Counter(
    "quell_delivery_attempts",
    "Attempts to deliver an event to an integration, by integration kind and outcome "
    "(delivered, retrying, failed: given up, disabled: the receiver turned the integration off, "
    "lost: the worker died during the attempt).",
    ["kind", "outcome"],
)
INGESTED_SCANS = Counter(
    "quell_ingested_scans", "Scans stored, by where they came from (soda, dbt, gx, api).", ["source"]
)
INGESTED_RESULTS = Counter(
    "quell_ingested_check_results",
    "Check results stored, by where they came from and outcome.",
    ["source", "outcome"],
)
TASK_RUNS = Counter(
    "quell_task_runs", "Background tasks run by workers, by task and outcome.", ["task", "status"]
)

# Scan.source as each ingestion path writes it, folded into the names operators know.
SOURCES = {"soda-core": "soda", "soda": "soda", "dbt": "dbt", "great_expectations": "gx", "api": "api"}
OUTCOMES = frozenset({"pass", "warn", "fail"})


def route_label(route: str | None, path: str, static_prefix: str) -> str:
    if route is not None:
        return "/" + route.lstrip("/")
    if path.startswith(static_prefix):
        return "static"
    return "unmatched"


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method if method in METHODS else "other", f"{status // 100}xx").observe(
        seconds
    )


def count_delivery_attempt(kind: str, outcome: str) -> None:
    DELIVERY_ATTEMPTS.labels(kind, outcome).inc()


def count_ingested(source: str, outcomes: Iterable[str]) -> None:
    label = SOURCES.get(source, "other")
    INGESTED_SCANS.labels(label).inc()
    tally: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome if outcome in OUTCOMES else "other"
        tally[key] = tally.get(key, 0) + 1
    for outcome, count in tally.items():
        INGESTED_RESULTS.labels(label, outcome).inc(count)


def count_task_run(task: str, status: str) -> None:
    TASK_RUNS.labels(task, status).inc()


def mark_process_dead(pid: int) -> None:
    """For gunicorn's child_exit hook: drop the per-process gauges of a web process that exited.

    Its counters and histograms stay, so totals never go backwards when gunicorn replaces a worker.
    """
    multiprocess.mark_process_dead(pid, str(multiproc.configure()))
