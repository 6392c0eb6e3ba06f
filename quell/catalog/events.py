"""What the catalog records when it changes (quell.lib.events): consumers subscribe, the catalog imports none of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from quell.accounts.models import User
from quell.catalog.models import CheckResult, Scan
from quell.lib.events import DomainEvent


@dataclass(frozen=True)
class ResultsIngested(DomainEvent):
    """A scan's results were stored (every ingest path: Soda Core, the REST push, dbt, GX, imports)."""

    scan: Scan
    results: Sequence[CheckResult]
    by: User | None
    # Each result's check's newest outcome before this scan ("" for a check it created): the rules
    # tell a check that passes again from one that keeps passing without reading its history.
    outcomes_before: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponsibilitiesChanged(DomainEvent):
    """A dataset's responsibilities were replaced: who may view or change it may have changed, and with
    it whether Everyone can see its incidents."""

    dataset_id: int
    by: User
