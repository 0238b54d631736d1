"""DNS providers: an RFC 2136 server, its zone and TSIG key (sealed), set by the operator.

The server address is an outbound target like a webhook's: refused when it is loopback, private
or the coordinator itself unless the operator allows private targets, checked when stored and
again (after resolving a name) before every update.
"""

import asyncio
import base64
import binascii
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.dns01_models import DnsProvider, WildcardCertificate
from coordinator.dns01.rfc2136 import ALGORITHMS, Dns01Failure, Target
from coordinator.domains.names import normalize_domain
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from coordinator.outbound import OutboundGuard, literal_address
from coordinator.secrets import Keyring
from shared.errors import Conflict, Forbidden, InvalidRequest

MASK: Final = "********"
_DEFAULT_PORT: Final = 53
_LABEL: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


@dataclass(frozen=True)
class ProviderInput:
    """What the operator sends (``serverAddress`` is ``HOST`` or ``HOST:PORT``)."""

    name: str
    server_address: str
    zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret: str


def narrowed(actor: Principal) -> bool:
    """A token limited to some projects, environments, resources or servers: providers and
    wildcard certificates serve the whole organization, so such a token neither sees (404, empty
    lists) nor creates them (403)."""
    return bool(
        actor.server_ids or actor.project_ids or actor.environment_ids or actor.resource_ids
    )


def require_organization_wide(actor: Principal) -> None:
    """``Forbidden`` for a narrowed token."""
    if narrowed(actor):
        raise Forbidden(
            "DNS providers and wildcard certificates serve the whole organization; use a token "
            "without project, environment, resource or server limits"
        )


def _secret_binding(provider_id: str) -> str:
    return f"dns-provider:{provider_id}"


def parse_server(value: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); 400 when malformed."""
    raw = value.strip()
    host, port = raw, _DEFAULT_PORT
    if raw.startswith("["):
        inner, _, rest = raw[1:].partition("]")
        host = inner
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise InvalidRequest(
                    "serverAddress must be HOST, HOST:PORT or [IPv6]:PORT",
                    details={"field": "serverAddress"},
                )
            port = int(rest[1:])
    elif raw.count(":") == 1:
        host, _, text = raw.partition(":")
        if not text.isdigit():
            raise InvalidRequest(
                "serverAddress has an invalid port", details={"field": "serverAddress"}
            )
        port = int(text)
    if not host or not 1 <= port <= 65535:
        raise InvalidRequest(
            "serverAddress must be HOST, HOST:PORT or [IPv6]:PORT",
            details={"field": "serverAddress"},
        )
    if literal_address(host) is None and host.lower() != "localhost":
        try:
            host = normalize_domain(host)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"serverAddress: {exc.message}", details={"field": "serverAddress"}
            ) from exc
    return host.lower(), port


def check_server(guard: OutboundGuard, host: str, port: int) -> None:
    """Refuse (400) what the address alone shows is not allowed."""
    address = literal_address(host)
    refused = (address is not None and not guard.address_allowed(address, port)) or (
        address is None
        and not guard.allow_private
        and (host == "localhost" or host.endswith(".localhost"))
    )
    if refused:
        raise InvalidRequest(
            "serverAddress points at a private, loopback, link-local or the coordinator's own "
            "address; the operator can allow private targets with "
            "--allow-private-webhook-targets",
            details={"field": "serverAddress", "host": host[:100]},
        )


def _check_secret(algorithm: str, secret: str) -> None:
    if algorithm not in ALGORITHMS:
        raise InvalidRequest(
            f"tsigAlgorithm must be one of {', '.join(ALGORITHMS)}",
            details={"field": "tsigAlgorithm"},
        )
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(
            "tsigSecret must be the key's base64 secret (as tsig-keygen prints it)",
            details={"field": "tsigSecret"},
        ) from exc
    if len(decoded) < 16:
        raise InvalidRequest("tsigSecret is shorter than 16 bytes", details={"field": "tsigSecret"})


def _key_name(value: str) -> str:
    """A TSIG key name is a DNS name (``berth-key``, ``berth.example.com``)."""
    name = value.strip().rstrip(".").lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidRequest(
            "tsigKeyName must be a DNS name (letters, digits, hyphens and underscores)",
            details={"field": "tsigKeyName"},
        )
    return name


async def create(
    actor: Principal, request_id: str, keyring: Keyring, guard: OutboundGuard, given: ProviderInput
) -> DnsProvider:
    """Check and store a provider (its secret encrypted, bound to the row)."""
    require_organization_wide(actor)
    host, port = parse_server(given.server_address)
    check_server(guard, host, port)
    zone = normalize_domain(given.zone)
    _check_secret(given.tsig_algorithm, given.tsig_secret)
    key_name = _key_name(given.tsig_key_name)
    provider_id = new_id("dnp")
    async with in_transaction():
        if await DnsProvider.exists(organization_id=actor.organization_id, name=given.name):
            raise Conflict(
                f"a DNS provider named {given.name!r} exists", details={"name": given.name}
            )
        row = await DnsProvider.create(
            id=provider_id,
            organization_id=actor.organization_id,
            name=given.name,
            kind="rfc2136",
            server_host=host,
            server_port=port,
            zone=zone,
            tsig_key_name=key_name,
            tsig_algorithm=given.tsig_algorithm,
            tsig_secret_encrypted=keyring.encrypt(given.tsig_secret, _secret_binding(provider_id)),
            created_at=datetime.now(UTC),
        )
        await audit.record(
            actor=actor,
            event_type="dns-provider.created",
            aggregate_type="dns-provider",
            aggregate_id=row.id,
            payload={"name": row.name, "zone": zone, "server": f"{host}:{port}"},
            request_id=request_id,
        )
    return row


async def get_provider(actor: Principal, provider_id: str) -> DnsProvider:
    """The caller's organization's provider, or 404."""
    return await visible_or_404(
        DnsProvider,
        "DNS provider",
        provider_id,
        lambda _row: not narrowed(actor),
        organization_id=actor.organization_id,
    )


async def listed(actor: Principal) -> list[DnsProvider]:
    """The organization's providers, oldest first."""
    if narrowed(actor):
        return []
    return await DnsProvider.filter(organization_id=actor.organization_id).order_by("id")


async def delete(actor: Principal, request_id: str, provider_id: str) -> None:
    """Delete a provider no wildcard certificate uses."""
    row = await get_provider(actor, provider_id)
    async with in_transaction():
        users = await WildcardCertificate.filter(dns_provider_id=row.id).count()
        if users:
            raise Conflict(
                f"{users} wildcard certificate(s) renew through this provider: delete them first",
                details={"dnsProviderId": row.id, "wildcardCertificates": users},
            )
        _ = await DnsProvider.filter(id=row.id).delete()
        await audit.record(
            actor=actor,
            event_type="dns-provider.deleted",
            aggregate_type="dns-provider",
            aggregate_id=row.id,
            payload={"name": row.name},
            request_id=request_id,
        )


async def target_of(
    row: DnsProvider, keyring: Keyring, guard: OutboundGuard, timeout: float = 10.0
) -> Target:
    """The update target with its address resolved and checked now (a name that changed to
    a refused address since it was stored is caught here)."""
    host = row.server_host
    address = literal_address(host)
    if address is None:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, row.server_port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise Dns01Failure(
                "dns", "dns_server_unreachable", f"{host} does not resolve: {exc}", True
            ) from exc
        resolved = [literal_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not resolved or any(
            a is None or not guard.address_allowed(a, row.server_port) for a in resolved
        ):
            raise Dns01Failure(
                "dns",
                "dns_server_refused",
                f"{host} resolves to an address outbound connections may not reach",
                False,
            )
        host = str(resolved[0])
    elif not guard.address_allowed(address, row.server_port):
        raise Dns01Failure(
            "dns",
            "dns_server_refused",
            f"{host} is an address outbound connections may not reach (private targets are "
            "not allowed)",
            False,
        )
    return Target(
        host=host,
        port=row.server_port,
        zone=row.zone,
        key_name=row.tsig_key_name,
        algorithm=row.tsig_algorithm,
        secret=keyring.decrypt(row.tsig_secret_encrypted, _secret_binding(row.id)),
        timeout=timeout,
    )
