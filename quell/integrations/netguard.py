"""Outbound HTTP that refuses loopback, private, link-local and metadata addresses.

The check happens once, centrally, when a socket is opened: the host name is resolved here, each
address is checked, and the socket connects to that very address (and checks the peer once
connected), so a DNS answer that changes between a check and the connection (DNS rebinding) gets
nowhere. Redirects open new connections and are checked the same way. Only addresses the operator
listed in QUELL_WEBHOOK_ALLOWED_NETWORKS (host names or CIDRs) are let through besides public ones.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services that are not caught by "is not global" on every Python version.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# RFC 1918 and IPv6 unique-local addresses: what "a private address" means in a refusal.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
MAX_PORT = 65535
# A label of a host name as the connection sees it (IDNA-encoded, so ASCII).
_HOST_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")


class DestinationRefused(Exception):
    """The receiver's address is not one Quell may send to."""


@dataclass(frozen=True)
class Policy:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Policy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or not _looks_like_host(entry):
                raise ImproperlyConfigured(
                    f"QUELL_WEBHOOK_ALLOWED_NETWORKS: {entry!r} is neither a host name nor an address or CIDR."
                )
            hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    @classmethod
    def from_settings(cls) -> Policy:
        return cls.parse(settings.WEBHOOK_ALLOWED_NETWORKS)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `address` (which `host` resolved to) may not be connected to, or None if it may."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        if any(address in network for network in self.networks):
            return None
        what = _forbidden_kind(address)
        if what is None:
            return None
        # An address as written ("0.0.0.0", "0x7f.1") is what it is; a name says what it resolved to.
        if numeric_address(host) == address:
            named = f"{host} is {what}"
        else:
            named = f"{host} resolves to {address}, {what}"
        return f"{named}; Quell does not send there unless QUELL_WEBHOOK_ALLOWED_NETWORKS lists it."


def _looks_like_host(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)


def _forbidden_kind(address: IPAddress) -> str | None:
    """What kind of inside address this is ("a loopback address"), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address in IPv6 clothing is judged as the IPv4 address it is.
        if address.ipv4_mapped is not None:
            return _forbidden_kind(address.ipv4_mapped)
        if address in NAT64:
            return _forbidden_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    # Most specific first: Python counts 0.0.0.0, documentation and reserved ranges as "private" too.
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in PRIVATE_NETWORKS):
        return "a private address"
    if address in SHARED_NETWORK:
        return "a carrier-grade NAT address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a non-public address"
    return None


def numeric_address(host: str) -> IPAddress | None:
    """The address `host` is, when it is one, read as the connection reads it (so `127.1`, `0x7f.1` and
    `2130706433` are 127.0.0.1, as they are to getaddrinfo); None for a name, which DNS resolves."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%")[0])


def host_problem(host: str) -> str | None:
    """Why `host` can never be connected to, judged without DNS, or None.

    The settings (when a URL is given) and the connection (each delivery, each redirect) both ask, so
    that no URL is accepted which delivery would then only retry as a DNS failure.
    """
    if host.endswith("."):
        # getaddrinfo reads "127.0.0.1." as a name to look up, not as the address, and a receiver's TLS
        # certificate and virtual hosts are for the name without the dot.
        return f"The host {host} ends with a dot; write it without the dot ({host.rstrip('.')})."
    if numeric_address(host) is not None:
        return None
    labels = host.split(".")
    # No top-level domain is all digits: "1.2.3.4.5" or "256.0.0.1" is a mistyped address, and DNS
    # would only ever answer that it does not exist.
    if labels[-1].isdigit() or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f"The host {host} is neither an IP address nor a host name."
    return None


def literal_refusal(host: str, policy: Policy | None = None) -> str | None:
    """For a URL whose host is an IP address (or localhost): why it would be refused, checked up front."""
    policy = policy or Policy.from_settings()
    address = numeric_address(host)
    if address is None:
        name = host.lower()
        if name in {"localhost", "localhost.localdomain"} or name.endswith(".localhost"):
            return policy.refusal(host, ipaddress.ip_address("127.0.0.1"))
        return None
    return policy.refusal(host, address)


@dataclass(frozen=True)
class Refusal:
    code: str  # "invalid_url": it is no URL Quell can send to; "address_refused": not to that address
    message: str


def url_refusal(url: str, policy: Policy | None = None) -> Refusal | None:
    """Why Quell will never deliver to `url`, judged without DNS, or None.

    The one judgement of a receiver's URL: the services ask it when a URL is given, and every delivery
    asks it again before connecting, so a URL accepted is one delivery tries, and one delivery would
    refuse for good is refused when it is given. Names are judged again by the addresses they resolve
    to when connecting (GuardedBackend).
    """
    try:
        parts = urlsplit(url)
        # Delivery's own reading of the URL (httpx's); a host name it cannot encode fails here.
        host = httpx.URL(url).raw_host.decode("ascii")
    except (ValueError, httpx.InvalidURL) as error:
        return Refusal("invalid_url", f"The URL is not valid ({error}).")
    if parts.scheme not in ("http", "https") or not host:
        return Refusal("invalid_url", "The URL must start with https:// (or http://) and name a host.")
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = -1
    if port is not None and not 0 < port <= MAX_PORT:
        written = parts.netloc.rpartition(":")[2]
        return Refusal("invalid_url", f"The port must be a number from 1 to {MAX_PORT}, not {written}.")
    problem = host_problem(host)
    if problem:
        return Refusal("invalid_url", problem)
    refusal = literal_refusal(host, policy)
    if refusal:
        return Refusal("address_refused", refusal)
    return None


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # What the settings refused, a redirect cannot bring back (nor would DNS ever answer it).
        problem = host_problem(host)
        if problem:
            raise DestinationRefused(problem)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"Cannot resolve {host}: {error.strerror}") from None
        refusals: list[str] = []
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            refusal = self.policy.refusal(host, address)
            if refusal:
                refusals.append(refusal)
                continue
            try:
                # An address literal: nothing is resolved again, so what was checked is what is dialled.
                stream = super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            sock = stream.get_extra_info("socket")
            peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%")[0])
            refusal = self.policy.refusal(host, peer)
            if refusal:
                stream.close()
                raise DestinationRefused(refusal)
            return stream
        if failure is not None:
            raise failure
        raise DestinationRefused(refusals[0] if refusals else f"{host} has no address to connect to.")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; one context serves every delivery.
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over the guarded backend; proxies from the environment are not used."""

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        # HTTPTransport takes no network backend, so its pool is rebuilt with ours (same defaults).
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=10,
            max_keepalive_connections=0,
            network_backend=GuardedBackend(policy or Policy.from_settings()),
        )


def guarded_client(timeout: float) -> httpx.Client:
    """An httpx client for one delivery: redirects followed (each hop guarded), no proxies, no cookies kept."""
    return httpx.Client(
        transport=GuardedTransport(),
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=5,
        trust_env=False,
    )
