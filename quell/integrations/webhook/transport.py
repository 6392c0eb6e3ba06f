"""Generic webhooks: Soda's payload plus Standard Webhooks' `id`, `type`, `timestamp`, and signatures.

Headers: `webhook-id` (the same on every retry and redelivery), `webhook-timestamp` (this attempt,
Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one
per live secret, space-separated during a rotation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from quell.integrations.models import STANDARD_TYPES, Delivery, Event, EventType, IncidentLink, Integration
from quell.integrations.payloads import timestamp
from quell.integrations.transport import (
    Answer,
    HttpTransport,
    OutboundRequest,
    Sent,
    TransportError,
    compact_json,
    header_problem,
)

LINK_URL_MAX = 2000
LINK_TEXT_MAX = 200


def results_for(integration: Integration, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The check results an integration asked for: failures only when its minimum outcome is fail."""
    if integration.min_outcome == "fail":
        return [result for result in results if result.get("outcome") == "fail"]
    return results


def webhook_body(event: Event, integration: Integration) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event.message_id,
        "type": STANDARD_TYPES[EventType(event.type)],
        "timestamp": timestamp(event.created_at),
        **event.payload,
    }
    if event.type == EventType.CHECK_EVALUATION:
        body["checkResults"] = results_for(integration, body.get("checkResults", []))
    if event.incident_id is not None:
        body["incidentLinkCallbackUrl"] = IncidentLink.for_pair(
            event.incident_id, integration.pk
        ).callback_url
    return body


def signature_headers(
    message_id: str, body: str, secrets: list[str], now: datetime | None = None
) -> dict[str, str]:
    sent_at = (now or datetime.now(UTC)).replace(microsecond=0)
    signatures = [Webhook(secret).sign(message_id, sent_at, body) for secret in secrets]
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(sent_at.timestamp()))}
    if signatures:
        headers["webhook-signature"] = " ".join(signatures)
    return headers


def link_from(data: Any) -> tuple[str, str] | None:
    """`{"link": {"url", "text"}}` from a receiver's answer, if it holds a usable http(s) link."""
    if not isinstance(data, dict) or not isinstance(data.get("link"), dict):
        return None
    url, text = data["link"].get("url"), data["link"].get("text") or ""
    if not isinstance(url, str) or not isinstance(text, str):
        return None
    if not url.startswith(("https://", "http://")) or len(url) > LINK_URL_MAX:
        return None
    return url, text.strip()[:LINK_TEXT_MAX]


class WebhookTransport(HttpTransport):
    def build(self, event: Event, delivery: Delivery) -> OutboundRequest:
        body = compact_json(webhook_body(event, self.integration))
        headers = {str(name): str(value) for name, value in self.integration.headers.items()}
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem:
                raise TransportError(problem, permanent=True)
        headers |= signature_headers(event.message_id, body.decode(), self.integration.signing_secrets())
        return OutboundRequest(self.integration.url, body, headers)

    def accept(self, event: Event, answer: Answer) -> Sent:
        link = link_from(answer.json()) if event.incident_id is not None else None
        return Sent(answer.status_code, answer.excerpt, link)
