"""Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is received").

The retired Office 365 connectors took MessageCards; Workflows take a message whose attachment is an
Adaptive Card (version 1.4, which Teams renders everywhere). Workflows answer 202 Accepted.
"""

from __future__ import annotations

from typing import Any

from quell.integrations.messages import Message, message_for
from quell.integrations.models import Delivery, Event
from quell.integrations.transport import HttpTransport, OutboundRequest, compact_json

CARD_VERSION = "1.4"
COLOURS = {"good": "Good", "attention": "Attention", "warning": "Warning", "default": "Default"}


def card(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "size": "Medium",
            "weight": "Bolder",
            "color": COLOURS.get(message.tone, "Default"),
            "wrap": True,
        }
    ]
    if message.facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in message.facts]}
        )
    if message.text:
        body.append({"type": "TextBlock", "text": message.text, "wrap": True})
    for line in message.lines:
        body.append({"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if message.url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": message.url_label, "url": message.url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}
        ],
    }


class TeamsTransport(HttpTransport):
    def build(self, event: Event, delivery: Delivery) -> OutboundRequest:
        return OutboundRequest(self.integration.url, compact_json(card(message_for(event, self.integration))))
