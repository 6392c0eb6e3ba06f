"""Slack incoming webhooks: one Block Kit message per event.

Slack answers 200 `ok`; 400 `invalid_payload`, 403 `action_prohibited` and 404 `no_service` are not
retried, and 410 `channel_is_archived` turns the integration off, as for every kind.
"""

from __future__ import annotations

from typing import Any

from quell.integrations.messages import Message, message_for
from quell.integrations.models import Delivery, Event
from quell.integrations.transport import HttpTransport, OutboundRequest, compact_json

# Block Kit's limits: header text, section text, a field, button text.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_MAX = 75


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blocks(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(message.title, HEADER_MAX), "emoji": True},
        }
    ]
    if message.facts:
        body.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{escape(name)}*\n{escape(value)}", FIELD_MAX)}
                    for name, value in message.facts[:10]
                ],
            }
        )
    if message.text:
        body.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(escape(message.text), SECTION_MAX)}}
        )
    if message.lines:
        text = "\n".join(f"• {escape(line)}" for line in message.lines)
        body.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_MAX)}})
    if message.url:
        body.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _clip(message.url_label, BUTTON_MAX)},
                        "url": message.url,
                    }
                ],
            }
        )
    # `text` is what notifications and screen readers show.
    return {"text": _clip(message.title, SECTION_MAX), "blocks": body}


class SlackTransport(HttpTransport):
    def build(self, event: Event, delivery: Delivery) -> OutboundRequest:
        return OutboundRequest(
            self.integration.url, compact_json(blocks(message_for(event, self.integration)))
        )
