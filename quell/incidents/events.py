"""What the incidents app records when an incident changes (quell.lib.events).

The status tallies (quell.incidents.reactions), the integrations' outbox and, later, rules and
notifications subscribe to these; the incident services import none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quell.accounts.models import User
from quell.catalog.models import CheckResult
from quell.incidents.models import Incident, IncidentRule, TimelineEvent
from quell.lib.events import DomainEvent


@dataclass(frozen=True)
class IncidentCreated(DomainEvent):
    incident: Incident
    dataset_ids: frozenset[int]
    results: Sequence[CheckResult]
    by: User | None
    # The incident rule Quell opened it for (`by` is then the system user); None for a person.
    rule: IncidentRule | None = None


@dataclass(frozen=True)
class IncidentChanged(DomainEvent):
    """An incident's fields changed, or results were attached (or both).

    `incident` is as it is now; `status_before`, `severity_before` and `dataset_ids_before` are what
    the change replaced, so a consumer that keeps counts can move them. `changes` are the timeline
    events of the changed fields; `added_results` the results newly linked. `rule`: the incident
    rule Quell made the change for (`by` is then the system user); None for a person, and for
    folding (an organisation setting, not a rule).
    """

    incident: Incident
    by: User | None
    status_before: str
    severity_before: str
    dataset_ids_before: frozenset[int]
    dataset_ids: frozenset[int]
    changes: Sequence[TimelineEvent] = ()
    added_results: Sequence[CheckResult] = ()
    rule: IncidentRule | None = None
