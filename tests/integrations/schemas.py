"""JSON schemas for what Slack and Teams accept, written from their public references.

Block Kit: the parts of https://api.slack.com/reference/block-kit/blocks Quell uses, with Slack's
length limits. Adaptive Cards: the required properties of the elements Quell uses, from
http://adaptivecards.io/schemas/adaptive-card.json, inside the message a Teams Workflows webhook takes.
"""

from __future__ import annotations

from typing import Any


def _text(kind: str, max_length: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "text"],
        "properties": {
            "type": {"const": kind},
            "text": {"type": "string", "minLength": 1, "maxLength": max_length},
            "emoji": {"type": "boolean"},
            "verbatim": {"type": "boolean"},
        },
        "additionalProperties": False,
    }


BLOCK_KIT_MESSAGE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["blocks"],
    "properties": {
        "text": {"type": "string", "maxLength": 40000},
        "blocks": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"$ref": "#/$defs/block"}},
    },
    "additionalProperties": False,
    "$defs": {
        "header": {
            "type": "object",
            "required": ["type", "text"],
            "properties": {
                "type": {"const": "header"},
                "text": _text("plain_text", 150),
                "block_id": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "section": {
            "type": "object",
            "required": ["type"],
            "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
            "properties": {
                "type": {"const": "section"},
                "text": {"oneOf": [_text("mrkdwn", 3000), _text("plain_text", 3000)]},
                "fields": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 10,
                    "items": {"oneOf": [_text("mrkdwn", 2000), _text("plain_text", 2000)]},
                },
                "block_id": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "button": {
            "type": "object",
            "required": ["type", "text"],
            "properties": {
                "type": {"const": "button"},
                "text": _text("plain_text", 75),
                "url": {"type": "string", "maxLength": 3000, "pattern": "^https?://"},
                "action_id": {"type": "string"},
                "style": {"enum": ["primary", "danger"]},
            },
            "additionalProperties": False,
        },
        "actions": {
            "type": "object",
            "required": ["type", "elements"],
            "properties": {
                "type": {"const": "actions"},
                "elements": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 25,
                    "items": {"$ref": "#/$defs/button"},
                },
                "block_id": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "block": {
            "oneOf": [{"$ref": "#/$defs/header"}, {"$ref": "#/$defs/section"}, {"$ref": "#/$defs/actions"}]
        },
    },
}

ADAPTIVE_CARD_MESSAGE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": ["string", "null"]},
                    "content": {"$ref": "#/$defs/AdaptiveCard"},
                },
            },
        },
    },
    "$defs": {
        "AdaptiveCard": {
            "type": "object",
            "required": ["type", "version"],
            "properties": {
                "type": {"const": "AdaptiveCard"},
                "version": {"type": "string", "pattern": "^1\\.[0-5]$"},
                "$schema": {"type": "string"},
                "body": {"type": "array", "items": {"$ref": "#/$defs/Element"}},
                "actions": {"type": "array", "items": {"$ref": "#/$defs/Action.OpenUrl"}},
            },
            "additionalProperties": False,
        },
        "Element": {"oneOf": [{"$ref": "#/$defs/TextBlock"}, {"$ref": "#/$defs/FactSet"}]},
        "TextBlock": {
            "type": "object",
            "required": ["type", "text"],
            "properties": {
                "type": {"const": "TextBlock"},
                "text": {"type": "string"},
                "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"]},
                "spacing": {"enum": ["None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"]},
                "wrap": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "FactSet": {
            "type": "object",
            "required": ["type", "facts"],
            "properties": {
                "type": {"const": "FactSet"},
                "facts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["title", "value"],
                        "properties": {"title": {"type": "string"}, "value": {"type": "string"}},
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
        "Action.OpenUrl": {
            "type": "object",
            "required": ["type", "url"],
            "properties": {
                "type": {"const": "Action.OpenUrl"},
                "url": {"type": "string", "pattern": "^https?://"},
                "title": {"type": "string"},
            },
            "additionalProperties": False,
        },
    },
}
