"""Which transport sends for each kind of integration.

Apart from the transport base (quell.integrations.transport) so that the base imports none of the
transports that build on it: each kind's module imports the base, and only this registry imports them.
"""

from __future__ import annotations

from quell.integrations.models import Integration
from quell.integrations.msteams.transport import TeamsTransport
from quell.integrations.slack.transport import SlackTransport
from quell.integrations.transport import Transport
from quell.integrations.webhook.transport import WebhookTransport

KINDS: dict[str, type[Transport]] = {
    "webhook": WebhookTransport,
    "slack": SlackTransport,
    "msteams": TeamsTransport,
}


def transport_for(integration: Integration) -> Transport:
    return KINDS[integration.kind](integration)
