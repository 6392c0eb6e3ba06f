"""The rules hear of every ingest (Soda Core 3.x and 4.x, the REST push, dbt, GX) through ResultsIngested,
in the ingest's transaction. Subscribed in AutomationConfig.ready."""

from __future__ import annotations

from quell.automation.engine import apply_rules
from quell.catalog.events import ResultsIngested
from quell.lib.events import handles


@handles(ResultsIngested)
def apply_the_rules(event: ResultsIngested) -> None:
    apply_rules(event.results, event.outcomes_before)
