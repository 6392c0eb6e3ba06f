"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it is sent, and Quell's settings pointed at it."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from quell.lib.mailurl import parse_email_url
from tests.web.conftest import client_as  # noqa: F401  (a fixture: the pages are signed in as each role)


@dataclass
class Mailbox:
    """What the SMTP server was handed: each message with the envelope's recipients."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on 127.0.0.1 (no TLS, as a relay on the same machine) and its port."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def use_email_url(settings: Any, url: str) -> None:
    """Quell's settings as QUELL_EMAIL_URL=url would make them."""
    config = parse_email_url(url)
    settings.EMAIL_CONFIG = config
    settings.EMAIL_ENABLED = config.enabled
    for name, value in config.as_settings().items():
        setattr(settings, name, value)
