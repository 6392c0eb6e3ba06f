"""Soda's webhook payload shapes (incident, check results), built from Quell's records.

Field names follow Soda Cloud's webhook documentation so receivers written for Soda keep working;
`sodaCloudUrl` points at Quell's own pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from quell.accounts.models import User
from quell.catalog.models import CheckResult, Dataset
from quell.incidents.models import Incident, IncidentCheckResult, IncidentRule

# An incident with more linked results than this carries the newest ones and the total count.
MAX_RESULTS = 100


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.display_name}


def rule_ref(rule: IncidentRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"id": rule.pk, "name": rule.name}


def dataset_payload(dataset: Dataset) -> dict[str, Any]:
    source = dataset.data_source
    return {
        "id": dataset.pk,
        "sodaCloudUrl": f"{settings.BASE_URL}/datasets/{dataset.pk}",
        "name": dataset.name,
        "label": dataset.label or dataset.name,
        "tags": [],
        "owner": person(dataset.owner),
        "datasource": {"id": source.pk, "name": source.name, "label": source.name},
        "attributes": [],
    }


def check_result_payload(result: CheckResult) -> dict[str, Any]:
    check = result.check_ref
    return {
        "id": result.pk,
        "sodaCloudUrl": f"{settings.BASE_URL}/checks/{check.pk}",
        "checkId": check.pk,
        "name": check.name,
        "definition": check.definition or check.name,
        "datasets": [dataset_payload(result.dataset)],
        "column": check.column or None,
        "outcome": result.outcome,
        "evaluationStatus": result.outcome,
        "value": result.value,
        "dataTimestamp": timestamp(result.data_timestamp),
        "diagnostics": {"value": result.value, **(result.diagnostics or {})},
        "attributes": [
            {"name": name, "value": value} for name, value in sorted((check.attributes or {}).items())
        ],
    }


RESULT_RELATIONS = ("check_ref", "dataset__data_source", "dataset__owner")


def check_results_payload(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    return [check_result_payload(result) for result in results]


def incident_url(incident: Incident) -> str:
    return f"{settings.BASE_URL}/incidents/{incident.number}"


def _opening_rule(incident: Incident) -> IncidentRule | None:
    """The rule that opened the incident, read only when it has one (and not read already); None when
    that rule is gone (its key has no database constraint)."""
    if incident.rule_id is None:
        return None
    if Incident.rule.is_cached(incident):
        return incident.rule
    return IncidentRule.objects.filter(pk=incident.rule_id).first()


def incident_payload(incident: Incident) -> dict[str, Any]:
    """The incident as Soda's webhooks describe it, with its linked results (newest MAX_RESULTS)."""
    from quell.integrations.models import IncidentLink

    links = IncidentCheckResult.objects.filter(incident=incident)
    total = links.count()
    newest = links.select_related(*(f"check_result__{relation}" for relation in RESULT_RELATIONS)).order_by(
        "-added_at", "-id"
    )[:MAX_RESULTS]
    results = [link.check_result for link in reversed(list(newest))]
    datasets = incident.datasets.select_related("data_source", "owner").order_by("id")
    external = IncidentLink.objects.filter(incident=incident).exclude(url="").select_related("integration")
    return {
        "id": incident.pk,
        "sodaCloudUrl": incident_url(incident),
        "number": incident.number,
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "createdTimestamp": timestamp(incident.created_at),
        "lastUpdatedTimestamp": timestamp(incident.updated_at),
        "resolutionNotes": incident.resolution_notes,
        # Quell's own field (Soda's incidents have no reason): null while open or not recorded.
        "resolutionReason": incident.resolution_reason or None,
        "resolutionTimestamp": timestamp(incident.resolved_at),
        "links": [
            {
                "integrationType": link.integration.kind,
                "name": link.text or link.integration.name,
                "url": link.url,
            }
            for link in external
        ],
        "lead": person(incident.lead),
        "reporter": person(incident.reporter),
        # Quell's own field: the incident rule that opened it; null when a person did.
        "rule": rule_ref(_opening_rule(incident)),
        "datasets": [dataset_payload(dataset) for dataset in datasets],
        "checkResults": check_results_payload(results),
        "checkResultCount": total,
        "version": incident.version,
    }
