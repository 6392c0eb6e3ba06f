"""Who is asking: the client address of a request, believing X-Forwarded-For only from trusted proxies.

`client_of` is the one place that decides it; the request log, /metrics, the log-in throttle and every
stored address (LoginFailure.ip) go through it, so none of them sees the proxy in place of the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Headers a reverse proxy adds; their presence from an untrusted peer means "a proxy we do not know".
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def parse_networks(items: Iterable[str], setting: str) -> tuple[Network, ...]:
    """CIDRs or single addresses; a malformed entry is a configuration error naming the setting."""
    return _parse(tuple(items), setting)


@functools.lru_cache(maxsize=32)
def _parse(items: tuple[str, ...], setting: str) -> tuple[Network, ...]:
    networks: list[Network] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{setting}: {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@dataclass(frozen=True)
class Client:
    """`peer` is the socket's address; `address` the client's, or None when it cannot be told."""

    peer: Address | None
    address: Address | None
    # The request came through a proxy that is not in QUELL_TRUSTED_PROXIES.
    untrusted_proxy: bool = False


def client_of(request: HttpRequest) -> Client:
    """The client behind the trusted proxies: the rightmost X-Forwarded-For entry that is not one of them.

    Entries left of it were written by the client itself and prove nothing, so they are never used.
    """
    peer = parse_address(request.META.get("REMOTE_ADDR", ""))
    trusted = parse_networks(settings.TRUSTED_PROXIES, "QUELL_TRUSTED_PROXIES")
    forwarded = any(request.META.get(header) for header in FORWARDING_HEADERS)
    if peer is None or not within(peer, trusted):
        return Client(peer, peer, untrusted_proxy=forwarded)
    chain = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    address: Address | None = peer
    for part in reversed(chain):
        address = parse_address(part)
        if address is None or not within(address, trusted):
            break
    return Client(peer, address)


def client_address(request: HttpRequest) -> str | None:
    """The client's address as text, for throttles and records: `client_of`'s, else the peer's.

    The peer stands in only when the client cannot be told (a trusted peer forwarding an entry that is
    no address), so such requests share one bucket instead of escaping the count.
    """
    client = client_of(request)
    address = client.address if client.address is not None else client.peer
    return str(address) if address is not None else None
