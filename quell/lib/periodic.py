"""The registry of periodic jobs: apps register theirs at start-up; `quell worker` runs them
(quell.ops.periodic, which says how exclusive jobs are claimed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Job:
    name: str
    run: Callable[[], object]
    interval: float
    shared: bool = False
    # An exclusive job's lease; a run longer than this may overlap with another worker's.
    lease_seconds: float = 600.0
    next_at: float = field(default=0.0)


_registry: dict[str, Job] = {}


def register(
    name: str,
    run: Callable[[], object],
    *,
    interval: float,
    shared: bool = False,
    lease_seconds: float = 600.0,
) -> None:
    """Register (or replace) a periodic job by name; call at import time or from AppConfig.ready()."""
    _registry[name] = Job(name, run, interval, shared, lease_seconds)


def registered() -> dict[str, Job]:
    return dict(_registry)
