"""Outbound URL guard: keep operator-supplied URLs (webhooks, later S3 and ACME) off internal hosts.

A URL the coordinator fetches on a user's behalf must not reach loopback, link-local (cloud
metadata at 169.254.169.254), private, shared or reserved addresses, nor the coordinator itself,
unless the operator explicitly allows private targets. Two checks, both needed:

* ``check_url`` at configuration time refuses what the URL alone shows (scheme, an address
  literal, ``localhost`` names) with a 400, so a bad policy is never stored;
* ``guard.connector()`` at delivery time resolves the name, refuses the connection when *any*
  resolved address is not allowed, and hands aiohttp only the checked addresses. aiohttp then
  connects to exactly those addresses (keeping the original ``Host`` header and TLS SNI), so a
  DNS answer that changes between the check and the connect (a rebind) cannot swap the target.
"""

import ipaddress
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import psutil
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from coordinator.appkeys import SETTINGS_KEY
from coordinator.settings import Settings
from shared.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class TargetRefused(OSError):
    """An outbound target is not allowed; an ``OSError`` so aiohttp reports it as a connect
    failure (``ClientConnectorError``) instead of crashing the caller."""


@dataclass(frozen=True)
class OutboundGuard:
    """The policy: whether private targets are allowed, and the coordinator's own addresses.

    ``own`` holds (host, port) pairs the coordinator listens on or is published as; they are
    refused even when private targets are allowed (a webhook must not call Berth's own API).
    """

    allow_private: bool = False
    own: Collection[tuple[str, int]] = field(default_factory=frozenset)
    # Where names are looked up (tests substitute a fixed answer to play a rebinding DNS).
    resolver_factory: Callable[[], AbstractResolver] = DefaultResolver

    def address_allowed(self, address: IPAddress, port: int) -> bool:
        """Whether connecting to ``address``:``port`` is allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
        # Berth's own port on any non-public address of this host is the coordinator itself
        # (it may listen on a wildcard address, reachable through every local address).
        if self._is_own(str(address), port) or (not address.is_global and self._own_port(port)):
            return False
        if self.allow_private:
            return not address.is_unspecified and not address.is_multicast
        return address.is_global and not address.is_multicast

    def _own_port(self, port: int) -> bool:
        return any(own_port == port for _, own_port in self.own)

    def _is_own(self, host: str, port: int) -> bool:
        return (host.lower(), port) in self.own

    def check_url(self, url: str, *, field_name: str = "url") -> None:
        """Refuse (400) a URL whose scheme, literal address or name is not allowed."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise InvalidRequest(f"{field_name} must be an http or https URL")
        host = (parts.hostname or "").rstrip(".").lower()
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise InvalidRequest(f"{field_name} has an invalid port") from exc
        if not host:
            raise InvalidRequest(f"{field_name} has no host")
        refused = InvalidRequest(
            f"{field_name} points at a private, loopback, link-local or the coordinator's own "
            "address; the operator can allow private targets with "
            "--allow-private-webhook-targets",
            details={"field": field_name, "host": host[:100]},
        )
        if self._is_own(host, port):
            raise refused
        address = literal_address(host)
        if address is not None:
            if not self.address_allowed(address, port):
                raise refused
        elif not self.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise refused

    def connector(self) -> aiohttp.TCPConnector:
        """A connector whose every connection goes only to checked addresses."""
        return aiohttp.TCPConnector(resolver=_CheckingResolver(self), use_dns_cache=False)

    def resolver(self) -> AbstractResolver:
        """A resolver that refuses names answering with an address that is not allowed (for
        clients that build their own connector, e.g. the S3 backup target's)."""
        return _CheckingResolver(self)


# The (host, port) pairs the coordinator is reachable at; filled in once the listener is bound
# (port 0 picks a port), and shared by every guard built for this app.
OWN_ADDRESSES_KEY: web.AppKey[set[tuple[str, int]]] = web.AppKey("outbound_own_addresses")


def install(app: web.Application, settings: Settings) -> None:
    """Record the coordinator's configured listen and public addresses for its guards."""
    own = {(settings.host.lower(), settings.port)}
    if settings.public_url:
        public = urlsplit(settings.public_url)
        scheme = public.scheme.lower()
        if public.hostname and scheme in _DEFAULT_PORTS:
            own.add((public.hostname.lower(), public.port or _DEFAULT_PORTS[scheme]))
    app[OWN_ADDRESSES_KEY] = own


def note_bound(app: web.Application, addresses: list[tuple[str, int]]) -> None:
    """Add the addresses the listener actually bound (after ``site.start()``); a wildcard
    listener is reachable through every local interface address."""
    own = app[OWN_ADDRESSES_KEY]
    for host, port in addresses:
        own.add((host.lower(), port))
        address = literal_address(host)
        if address is not None and address.is_unspecified:
            own.update((local, port) for local in _interface_addresses())


def _interface_addresses() -> set[str]:
    found: set[str] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.add(entry.address.split("%", 1)[0].lower())
    return found


def guard_for(app: web.Application) -> OutboundGuard:
    """The coordinator's guard: the operator's private-target choice; its own addresses are
    refused always."""
    own: set[tuple[str, int]] = app[OWN_ADDRESSES_KEY]
    return OutboundGuard(allow_private=app[SETTINGS_KEY].allow_private_webhook_targets, own=own)


def literal_address(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _CheckingResolver(AbstractResolver):
    """Resolves with the default resolver, then refuses unless every answer is allowed.

    aiohttp skips the resolver for address literals, so ``check_url`` must also run at
    delivery time (``WebhookSender`` does); this resolver covers names.
    """

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._resolver = guard.resolver_factory()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        for answer in answers:
            address = literal_address(answer["host"].split("%", 1)[0])
            if address is None or not self._guard.address_allowed(address, port):
                raise TargetRefused(f"{host} resolves to an address that is not allowed")
        return answers

    async def close(self) -> None:
        await self._resolver.close()
