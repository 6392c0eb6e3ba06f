"""What a chat message says about an event, before Slack or Teams dress it up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from quell.incidents.models import ResolutionReason
from quell.integrations.models import Event, EventType, Integration
from quell.integrations.webhook.transport import results_for

MAX_LINES = 10
DESCRIPTION_CHARS = 500


@dataclass
class Message:
    title: str
    text: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    url: str = ""
    url_label: str = "Open in Quell"
    # "good", "attention" or "warning": a colour hint for cards.
    tone: str = "default"


def _clip(text: str, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _who(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("email") or "someone")
    return "nobody" if value in (None, "") else str(value)


def _actor(payload: dict[str, Any]) -> str:
    """Who made the change: a person, or Quell itself with the incident rule it acted for
    ("Quell, rule 'Critical tables'"; plain "Quell" when it folded results, which no rule does)."""
    who = _who(payload.get("changedBy"))
    rule = payload.get("changedByRule")
    return f"{who}, rule '{rule['name']}'" if isinstance(rule, dict) else who


def _reason(value: Any) -> str:
    """A resolution reason as people read it ("False positive"); "none" when not recorded."""
    if value in ResolutionReason.values:
        return str(ResolutionReason(value).label)
    return "none" if value in (None, "") else str(value)


def _change_line(change: dict[str, Any]) -> str:
    name = {
        "resolutionNotes": "Resolution notes",
        "resolutionReason": "Resolution reason",
        "lead": "Lead",
    }.get(change["field"], change["field"].capitalize())
    if change["field"] == "lead":
        return f"{name}: {_who(change.get('old'))} → {_who(change.get('new'))}"
    if change["field"] == "resolutionReason":
        return f"{name}: {_reason(change.get('old'))} → {_reason(change.get('new'))}"
    if change["field"] == "resolutionNotes":
        return f"{name}: {_clip(str(change.get('new') or ''), 200)}"
    if change["field"] == "merged":
        merged = change.get("old") or {}
        return _clip(f"#{merged.get('number')} {merged.get('title', '')} merged into this incident", 200)
    return f"{name}: {change.get('old')} → {change.get('new')}"


def _incident_message(event: Event) -> Message:
    payload = event.payload
    incident = payload["incident"]
    created = event.type == EventType.INCIDENT_CREATED
    verb = "opened" if created else "updated"
    datasets = ", ".join(f"{d['datasource']['name']}/{d['name']}" for d in incident.get("datasets", []))
    facts = [
        ("Severity", str(incident["severity"]).capitalize()),
        ("Status", str(incident["status"]).capitalize()),
        ("Lead", _who(incident.get("lead"))),
    ]
    if datasets:
        facts.append(("Datasets", datasets))
    lines = [_change_line(change) for change in payload.get("changes", [])]
    added = payload.get("addedCheckResults") or []
    if added:
        lines.append(f"{len(added)} more check result{'s' if len(added) != 1 else ''} attached")
    if payload.get("changedBy") and not created:
        lines.append(f"By {_actor(payload)}")
    elif created and payload.get("changedByRule"):
        # A new incident a person opened names no one, as before; one a rule opened says which rule.
        lines.append(f"Opened by {_actor(payload)}")
    text = incident.get("description", "") if created else ""
    if incident["status"] == "resolved" and incident.get("resolutionNotes"):
        reason = incident.get("resolutionReason")
        text = f"Resolved ({_reason(reason)}): " if reason else "Resolved: "
        text += incident["resolutionNotes"]
    tone = (
        "good"
        if incident["status"] == "resolved"
        else "attention"
        if incident["severity"] == "critical"
        else "warning"
    )
    return Message(
        title=f"Incident #{incident['number']} {verb}: {incident['title']}",
        text=_clip(text, DESCRIPTION_CHARS),
        facts=facts,
        lines=lines[:MAX_LINES],
        url=incident["sodaCloudUrl"],
        url_label="Open the incident",
        tone=tone,
    )


def _results_message(event: Event, integration: Integration) -> Message:
    results = results_for(integration, event.payload.get("checkResults", []))
    failing = sum(1 for result in results if result["outcome"] == "fail")
    warning = len(results) - failing
    dataset = results[0]["datasets"][0] if results else None
    where = f" on {dataset['datasource']['name']}/{dataset['name']}" if dataset else ""
    parts = []
    if failing:
        parts.append(f"{failing} check{'s' if failing != 1 else ''} failed")
    if warning:
        parts.append(f"{warning} warned")
    lines = []
    for result in results[:MAX_LINES]:
        value = "" if result.get("value") is None else f" (value {result['value']:g})"
        lines.append(f"{result['outcome'].upper()} · {_clip(result['name'], 200)}{value}")
    if len(results) > MAX_LINES:
        lines.append(f"and {len(results) - MAX_LINES} more")
    return Message(
        title=_clip(", ".join(parts) + where, 140) if parts else "Check results",
        lines=lines,
        url=dataset["sodaCloudUrl"] if dataset else settings.BASE_URL,
        url_label="Open the dataset",
        tone="attention" if failing else "warning",
    )


def message_for(event: Event, integration: Integration) -> Message:
    if event.type in (EventType.INCIDENT_CREATED, EventType.INCIDENT_UPDATED):
        return _incident_message(event)
    if event.type == EventType.CHECK_EVALUATION:
        return _results_message(event, integration)
    return Message(
        title="Quell test message",
        text=f"If you can read this, the {integration.get_kind_display()} integration “{integration.name}” works.",
        url=settings.BASE_URL,
        tone="good",
    )
