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
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
        return (
            f"{host} resolves to {address}, a {what} address; Quell does not send there unless "
            "QUELL_WEBHOOK_ALLOWED_NETWORKS lists it."
        )


def _looks_like_host(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)


def _forbidden_kind(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address in IPv6 clothing is judged as the IPv4 address it is.
        if address.ipv4_mapped is not None:
            return _forbidden_kind(address.ipv4_mapped)
        if address in NAT64:
            return _forbidden_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        return "non-public"
    return None


def literal_refusal(host: str, policy: Policy | None = None) -> str | None:
    """For a URL whose host is an IP address (or localhost): why it would be refused, checked up front."""
    policy = policy or Policy.from_settings()
    name = host.strip("[]")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if name.lower().rstrip(".") in {"localhost", "localhost.localdomain"} or name.lower().endswith(
            ".localhost"
        ):
            return policy.refusal(host, ipaddress.ip_address("127.0.0.1"))
        return None
    return policy.refusal(host, address)


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
