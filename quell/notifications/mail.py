"""Email as the organisation has it (QUELL_EMAIL_URL, quell.lib.mailurl): whether it works, and a test
message an admin sends from the settings page (docs/notifications.md).

The test message is sent at once, not through a worker: the admin is waiting to learn whether the
settings work, and the answer is the SMTP server's. What Quell sends people about incidents will go
through a durable outbox instead (issue 21).
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from quell.accounts.models import User
from quell.accounts.permissions import require_admin
from quell.lib.errors import Unprocessable
from quell.lib.mailurl import EmailConfig


@dataclass(frozen=True)
class EmailStatus:
    enabled: bool
    # How messages leave ("SMTP to mail.example.com:587 (STARTTLS, logging in as quell)"), never the password.
    transport: str
    sender: str


def email_status(*, by: User) -> EmailStatus:
    require_admin(by, "see how Quell sends email")
    config: EmailConfig = settings.EMAIL_CONFIG
    return EmailStatus(
        enabled=settings.EMAIL_ENABLED, transport=config.describe(), sender=settings.DEFAULT_FROM_EMAIL
    )


def send_test_email(*, by: User) -> str:
    """Send a test message to the admin's own address, now; the address. Unprocessable, with the
    server's reason, when email is off or the message could not be handed over."""
    require_admin(by, "send a test email")
    if not settings.EMAIL_ENABLED:
        raise Unprocessable("Email is off: set QUELL_EMAIL_URL and restart Quell.", code="email_off")
    context = {
        "person": by,
        "transport": settings.EMAIL_CONFIG.describe(),
        "sender": settings.DEFAULT_FROM_EMAIL,
        "base_url": settings.BASE_URL,
        "sent_at": timezone.now(),
    }
    message = EmailMultiAlternatives(
        subject="Quell: test email",
        body=render_to_string("notifications/email/test.txt", context),
        to=[by.email],
    )
    message.attach_alternative(render_to_string("notifications/email/test.html", context), "text/html")
    try:
        message.send(fail_silently=False)
    except OSError as error:  # smtplib's errors, refused connections, timeouts and TLS failures alike
        raise Unprocessable(
            f"The test email to {by.email} could not be sent: {_reason(error)}", code="email_failed"
        ) from None
    return by.email


def _reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        return f"the server answered {error.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}."
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "the server refused the address."
    return f"{type(error).__name__}: {error or 'no reason given'}."
