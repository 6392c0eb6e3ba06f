"""Settings → Email: an admin sees how Quell sends email and sends themself a test message, through a
real SMTP server on 127.0.0.1; everyone else is refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from quell.lib.errors import Forbidden
from quell.notifications import mail
from tests.conftest import World
from tests.notifications.conftest import Mailbox, free_port, use_email_url
from tests.web.conftest import ROLES, ClientAs

URL = "/settings/email"


@pytest.mark.parametrize("role", ROLES)
def test_the_page_and_the_test_email_are_for_admins(
    client_as: ClientAs, world: World, role: str, smtp_server: tuple[Mailbox, int], settings: Any
) -> None:
    mailbox, port = smtp_server
    use_email_url(settings, f"smtp://127.0.0.1:{port}?starttls=false")
    client = client_as(role)

    shown, sent = client.get(URL), client.post(URL)

    if role == "admin":
        assert shown.status_code == 200
        assert sent.status_code == 302
        assert len(mailbox.received) == 1
    else:
        assert shown.status_code == 403
        assert "Only an admin can open the settings." in shown.content.decode()
        assert sent.status_code == 403
        assert mailbox.received == []


def test_anonymous_visitors_are_sent_to_log_in(client_as: ClientAs, world: World) -> None:
    for response in (client_as("anonymous").get(URL), client_as("anonymous").post(URL)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_the_services_refuse_people_who_are_not_admins(world: World) -> None:
    for name in ("manager", "viewer", "outsider"):
        with pytest.raises(Forbidden):
            mail.email_status(by=world.user(name))
        with pytest.raises(Forbidden):
            mail.send_test_email(by=world.user(name))


def test_with_email_off_the_page_says_so_and_the_test_is_refused(
    client_as: ClientAs, world: World, settings: Any
) -> None:
    use_email_url(settings, "")
    admin = client_as("admin")

    page = admin.get(URL).content.decode()
    assert "Email is off." in page
    assert "QUELL_EMAIL_URL" in page
    assert 'type="submit" disabled' in page
    answer = admin.post(URL, follow=True).content.decode()
    assert "Email is off: set QUELL_EMAIL_URL and restart Quell." in answer


def test_the_test_email_reaches_the_admin_as_plain_text_and_html(
    client_as: ClientAs, world: World, smtp_server: tuple[Mailbox, int], settings: Any
) -> None:
    mailbox, port = smtp_server
    use_email_url(settings, f"smtp://127.0.0.1:{port}?starttls=false")
    settings.DEFAULT_FROM_EMAIL = "Quell <quell@example.com>"
    admin = client_as("admin")

    page = admin.get(URL).content.decode()
    assert f"SMTP to 127.0.0.1:{port} (no TLS)" in page
    assert "Quell &lt;quell@example.com&gt;" in page
    answer = admin.post(URL, follow=True).content.decode()

    assert f"A test email was sent to {world.admin.email}." in answer
    ((recipients, message),) = mailbox.received
    assert recipients == [world.admin.email]
    assert message["To"] == world.admin.email
    assert message["From"] == "Quell <quell@example.com>"
    assert message["Subject"] == "Quell: test email"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Quell can send email" in text.get_content()
    assert f"{django_settings.BASE_URL}/settings/email" in text.get_content()
    assert f'<a href="{django_settings.BASE_URL}/settings/email">' in html.get_content()


def test_a_server_that_cannot_be_reached_is_reported_with_its_reason(
    client_as: ClientAs, world: World, settings: Any
) -> None:
    use_email_url(settings, f"smtp://127.0.0.1:{free_port()}?starttls=false&timeout=5")

    answer = client_as("admin").post(URL, follow=True).content.decode()

    assert f"The test email to {world.admin.email} could not be sent: ConnectionRefusedError" in answer


def test_the_settings_navigation_links_the_email_page(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get(URL).content.decode()

    assert f'href="{URL}" aria-current="page">Email</a>' in body
