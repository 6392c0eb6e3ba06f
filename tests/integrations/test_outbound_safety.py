"""Quell refuses to send to loopback, private, link-local and metadata addresses unless they are allowed."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from django.conf import LazySettings
from django.core.exceptions import ImproperlyConfigured

from quell.incidents import services as incidents
from quell.integrations import services as integrations
from quell.integrations.models import Delivery, DeliveryStatus
from quell.integrations.netguard import Policy
from quell.lib.errors import Invalid
from tests.conftest import World
from tests.integrations.conftest import Receiver, Reply, add_webhook, drain


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_a_private_address_is_refused_when_the_integration_is_made(world: World, url: str) -> None:
    with pytest.raises(Invalid) as refused:
        integrations.create_integration(by=world.admin, name="Inside", kind="webhook", url=url)
    assert refused.value.field == "url"
    assert "QUELL_WEBHOOK_ALLOWED_NETWORKS" in refused.value.message


def test_an_allowed_network_may_be_sent_to(world: World, settings: LazySettings) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    integration, _ = integrations.create_integration(
        by=world.admin, name="Jira", kind="webhook", url="https://10.1.2.3/"
    )
    assert integration.url == "https://10.1.2.3/"


def test_a_host_name_is_judged_by_the_address_it_connects_to(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    # A host name is no address literal: what it resolves to is only known when connecting.
    fast.WEBHOOK_ALLOWED_NETWORKS = ["localhost"]
    add_webhook(world, f"http://localhost:{port}/hook")
    fast.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "a loopback address" in delivery.last_error
    assert receiver.requests == []


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    """A receiver on another loopback address, which the tests do not allow."""
    served = Receiver(host="127.0.0.2")
    yield served
    served.close()


def test_a_redirect_to_a_refused_address_is_not_followed(
    world: World, receiver: Receiver, elsewhere: Receiver, fast: LazySettings
) -> None:
    receiver.default = Reply(307, b"", {"Location": elsewhere.url})
    add_webhook(world, receiver.url)
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "127.0.0.2 is a loopback address" in delivery.last_error
    assert len(receiver.requests) == 1
    assert elsewhere.requests == []


def test_a_redirect_to_an_allowed_address_is_followed_with_the_same_signed_body(
    world: World, receiver: Receiver, elsewhere: Receiver, fast: LazySettings
) -> None:
    fast.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1", "127.0.0.2"]
    receiver.default = Reply(308, b"", {"Location": elsewhere.url})
    add_webhook(world, receiver.url)
    incidents.create_incident(by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk])
    drain()

    (first,) = receiver.requests
    (followed,) = elsewhere.wait_for(1)
    assert followed.body == first.body
    assert followed.headers["webhook-signature"] == first.headers["webhook-signature"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_allowed_networks_take_addresses_cidrs_and_host_names() -> None:
    policy = Policy.parse(["127.0.0.1", "10.0.0.0/8", "fd00::/8", "jira.internal"])
    loopback = ipaddress.ip_address("127.0.0.1")
    assert policy.refusal("x", loopback) is None
    assert policy.refusal("x", ipaddress.ip_address("10.200.0.1")) is None
    assert policy.refusal("x", ipaddress.ip_address("fd00::5")) is None
    assert policy.refusal("jira.internal", ipaddress.ip_address("192.168.1.1")) is None
    assert policy.refusal("other.internal", ipaddress.ip_address("192.168.1.1")) is not None
    assert policy.refusal("x", ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.refusal("x", ipaddress.ip_address("93.184.215.14")) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("192.0.2.1", "non-public"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_every_kind_of_inside_address_is_refused_by_default(address: str, kind: str) -> None:
    refusal = Policy().refusal("h", ipaddress.ip_address(address))
    assert refusal is not None
    assert f"a {kind} address" in refusal


def test_a_malformed_allowed_network_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"10\.0\.0\.0/33"):
        Policy.parse(["10.0.0.0/33"])
