"""What an integration is given is refused at once, in words that say why, when delivery could never use it;
what is accepted is stored exactly as given; and delivery judges a stored URL or header as the settings do."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import LazySettings
from django.test import Client

from quell.incidents import services as incidents
from quell.integrations.models import Delivery, DeliveryStatus, Integration
from tests.conftest import ClientFor, World
from tests.integrations.conftest import Receiver, drain


def create(client_for: ClientFor, **fields: Any) -> Any:
    body = {"name": "Receiver", "kind": "webhook", "url": "https://example.com/hook", **fields}
    return client_for("admin").post("/integrations", json=body)


def refused(response: Any, code: str, field: str, status: int = 400) -> str:
    """The refusal's message, after checking its status and code."""
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text
    assert response.json()["field"] == field
    message: str = response.json()["message"]
    return message


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"X-Team": "Données qualité"}, "The value of X-Team holds 'é', which an HTTP header cannot carry"),
        ({"X-Team": "snow ☃"}, "The value of X-Team holds '☃'"),
        ({"X-Team": "a\nb"}, "The value of X-Team must be on one line"),
        ({"X-Team": "a\x07b"}, "The value of X-Team holds a control character (U+0007)"),
        ({"X-Team": " padded"}, "The value of X-Team starts or ends with a space or tab"),
        ({"X Team": "a"}, "The header name 'X Team' may hold only letters, digits and"),
        ({"X-Team:": "a"}, "The header name 'X-Team:' may hold only"),
        ({"Équipe": "a"}, "The header name 'Équipe' may hold only"),
    ],
)
def test_a_header_http_cannot_carry_is_refused_naming_the_header(
    client_for: ClientFor, world: World, headers: dict[str, str], words: str
) -> None:
    message = refused(create(client_for, headers=headers), "invalid_headers", "headers")
    assert words in message
    assert not Integration.objects.exists()


def test_a_header_http_can_carry_is_kept_as_given(client_for: ClientFor, world: World) -> None:
    headers = {"X-Token": "Bearer a/b+c=", "X-Empty": "", "X-Tabbed": "a\tb  c"}
    assert create(client_for, headers=headers).status_code == 201
    assert Integration.objects.get().headers == headers


def test_changing_headers_to_ones_http_cannot_carry_is_refused_and_keeps_the_old_ones(
    client_for: ClientFor, world: World
) -> None:
    integration_id = create(client_for, headers={"X-Token": "abc"}).json()["id"]
    changed = client_for("admin").patch(
        f"/integrations/{integration_id}", json={"headers": {"X-Token": "àbc"}}
    )
    assert "X-Token" in refused(changed, "invalid_headers", "headers")
    assert Integration.objects.get().headers == {"X-Token": "abc"}


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.2:0/", "The port must be a number from 1 to 65535, not 0."),
        ("http://[::1]:0/", "The port must be a number from 1 to 65535, not 0."),
        ("https://example.com:65536/", "The port must be a number from 1 to 65535, not 65536."),
        ("https://example.com:+443/", "The port must be a number from 1 to 65535, not +443."),
        (
            "http://127.0.0.1.:8080/hook",
            "The host 127.0.0.1. ends with a dot; write it without the dot (127.0.0.1).",
        ),
        ("https://hooks.example.com./x", "The host hooks.example.com. ends with a dot"),
        ("https://1.2.3.4.5/", "The host 1.2.3.4.5 is neither an IP address nor a host name."),
        ("https://256.1.1.1/", "The URL is not valid (Invalid IPv4 address: '256.1.1.1')."),
    ],
)
def test_a_url_delivery_could_never_use_is_refused(
    client_for: ClientFor, world: World, fast: LazySettings, url: str, words: str
) -> None:
    # 127.0.0.1 is allowed here: a trailing dot is refused as such, not as an address.
    fast.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1"]
    # The schema states a URL's shape, not its host's: a 400 with the rule's code.
    message = refused(create(client_for, url=url), "invalid_url", "url", status=400)
    assert words in message
    assert not Integration.objects.exists()


def test_a_url_with_spaces_is_refused_as_the_schema_says(client_for: ClientFor, world: World) -> None:
    message = refused(create(client_for, url=" https://example.com/hook"), "invalid_url", "url")
    assert "without spaces" in message
    assert not Integration.objects.exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://0.0.0.0/hook", "0.0.0.0 is the unspecified address;"),
        ("http://[::]/hook", ":: is the unspecified address;"),
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address;"),
        ("http://0x7f.1/hook", "0x7f.1 is a loopback address;"),
        ("http://2130706433/hook", "2130706433 is a loopback address;"),
        ("http://localhost/hook", "localhost resolves to 127.0.0.1, a loopback address;"),
        ("http://192.168.1.20/hook", "192.168.1.20 is a private address;"),
        ("http://[fe80::1]/hook", "fe80::1 is a link-local address;"),
        ("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address;"),
        ("http://100.64.0.9/", "100.64.0.9 is a carrier-grade NAT address;"),
        ("http://239.1.1.1/", "239.1.1.1 is a multicast address;"),
    ],
)
def test_an_inside_address_is_refused_in_words_that_name_its_kind(
    client_for: ClientFor, world: World, url: str, words: str
) -> None:
    message = refused(create(client_for, url=url), "address_refused", "url", status=400)
    assert message.startswith(words)
    assert "QUELL_WEBHOOK_ALLOWED_NETWORKS" in message


def test_changing_the_url_to_one_delivery_could_never_use_is_refused_and_keeps_the_old_one(
    client_for: ClientFor, world: World, fast: LazySettings
) -> None:
    integration_id = create(client_for, url="http://127.0.0.1:9/hook").json()["id"]
    for url in ("http://127.0.0.2:0/", "http://127.0.0.1.:9/hook", "http://0.0.0.0/"):
        changed = client_for("admin").patch(f"/integrations/{integration_id}", json={"url": url})
        assert changed.status_code == 400, changed.text
        assert changed.json()["field"] == "url"
    assert Integration.objects.get().url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://[::1]:8080/Hook", "http://[::1]:8080/Hook"),
        ("https://Hooks.Example.COM:8443/path?token=abc", "https://Hooks.Example.COM:8443/path?…"),
        ("https://example.com:00443/x", "https://example.com:00443/x"),
    ],
)
def test_an_accepted_url_is_stored_and_shown_as_given(
    client_for: ClientFor, world: World, fast: LazySettings, url: str, hint: str
) -> None:
    fast.WEBHOOK_ALLOWED_NETWORKS = ["::1"]
    created = create(client_for, url=url)
    assert created.status_code == 201, created.text
    assert Integration.objects.get().url == url
    assert created.json()["url"] == hint


def stored_before_the_rules(world: World, **fields: Any) -> Integration:
    """An integration saved without the services' checks, as one made by an older Quell may be."""
    return Integration.objects.create(
        name="Old",
        kind="webhook",
        events=["incidentCreated"],
        secret="whsec_" + "A" * 44,
        created_by=world.admin,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"url": "http://127.0.0.1.:{port}/hook"}, "The host 127.0.0.1. ends with a dot"),
        ({"url": "http://127.0.0.1:0/hook"}, "The port must be a number from 1 to 65535, not 0."),
        (
            {"url": "{receiver}", "headers": {"X-Team": "Données"}},
            "The value of X-Team holds 'é', which an HTTP header cannot carry",
        ),
    ],
)
def test_delivery_refuses_for_good_what_the_settings_refuse_instead_of_retrying_it(
    world: World, receiver: Receiver, fast: LazySettings, fields: dict[str, Any], words: str
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    fields = {**fields, "url": fields["url"].format(port=port, receiver=receiver.url)}
    stored_before_the_rules(world, **fields)
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert words in delivery.last_error
    assert receiver.requests == []


def test_the_settings_page_shows_a_header_http_cannot_carry_next_to_the_field(world: World) -> None:
    client = Client()
    client.force_login(world.admin)
    response = client.post(
        "/settings/integrations/new",
        {
            "kind": "webhook",
            "name": "Jira",
            "url": "https://example.com/hook",
            "events": ["incidentCreated"],
            "min_outcome": "warn",
            "headers": "X-Team: Données qualité",
        },
    )
    assert response.status_code == 400
    assert re.search(
        r'id="id_headers_error"[^>]*>The value of X-Team holds &#x27;é&#x27;, which an HTTP header cannot carry',
        response.content.decode(),
    )
    assert not Integration.objects.exists()
