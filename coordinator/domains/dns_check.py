"""DNS look-ups for bindings with dnspython: observed A/AAAA/CNAME targets and TXT challenges.

The resolver's server is configurable (``serve --dns-resolver IP[:PORT]``); unset, the system's
(``/etc/resolv.conf``). Every query has a deadline so a dead resolver cannot hold a request.
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from shared.errors import Unavailable

LOOKUP_TIMEOUT_SECONDS: Final = 3.0
CHALLENGE_LABEL: Final = "_berth-challenge"

DnsStatus = Literal[
    "pending", "matched", "mismatched", "not-found", "lookup-failed", "target-unknown"
]


@dataclass(frozen=True)
class Observation:
    """What DNS answered for a binding's name, compared with where it should point."""

    status: DnsStatus
    expected_targets: list[str]
    observed_targets: list[str]
    checked_at: datetime
    message: str
    reason_code: str | None = None

    def as_json(self) -> dict[str, object]:
        """The stored and served form (``dnsObservation``)."""
        return {
            "status": self.status,
            "expectedTargets": self.expected_targets,
            "observedTargets": self.observed_targets,
            "checkedAt": self.checked_at.isoformat(),
            "message": self.message,
            "reasonCode": self.reason_code,
        }


def parse_resolver(value: str) -> tuple[str, int]:
    """``IP`` or ``IP:PORT`` (``[v6]:PORT`` for IPv6) as (address, port); ``ValueError`` if not."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {value!r}: expected [IPv6]:PORT")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    address = str(ipaddress.ip_address(host))
    if not 0 < port < 65536:
        raise ValueError(f"resolver {value!r}: port out of range")
    return address, port


@dataclass
class Resolver:
    """One configured resolver; ``server`` None means the system's."""

    server: str | None = None
    _resolver: dns.asyncresolver.Resolver | None = field(default=None, repr=False)

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.server is None:
                resolver = dns.asyncresolver.Resolver()
            else:
                address, port = parse_resolver(self.server)
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [address]
                resolver.port = port
            resolver.lifetime = LOOKUP_TIMEOUT_SECONDS
            resolver.timeout = LOOKUP_TIMEOUT_SECONDS
            self._resolver = resolver
        return self._resolver

    async def _answers(self, name: str, rdtype: str) -> list[str]:
        """Texts of the answers; empty when the name or the type does not exist."""
        try:
            answer = await self._get().resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        out: list[str] = []
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                out.extend(f"CNAME {r.target.to_text(omit_final_dot=True).lower()}" for r in rrset)
            elif rrset.rdtype == dns.rdatatype.from_text(rdtype):
                out.extend(r.to_text() for r in rrset)
        return out

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA answers of ``name`` (CNAME chain followed), plus ``CNAME x`` entries."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            for entry in await self._answers(name, rdtype):
                if entry not in found:
                    found.append(entry)
        return found

    async def txt(self, name: str) -> list[str]:
        """TXT strings of ``name`` (each record's strings joined, as RFC 7208 reads them)."""
        try:
            answer = await self._get().resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise Unavailable(f"DNS lookup of {name} TXT failed: {exc}") from exc
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def observe(self, domain: str, server_host: str | None) -> Observation:
        """Compare what ``domain`` resolves to with the public address of the server."""
        now = datetime.now(UTC)
        try:
            observed = await self.addresses(domain)
        except dns.exception.DNSException as exc:
            return Observation(
                "lookup-failed",
                [],
                [],
                now,
                f"DNS lookup of {domain} failed: {exc}",
                "dns_lookup_failed",
            )
        if server_host is None:
            return Observation(
                "target-unknown",
                [],
                observed,
                now,
                "the server's public address is unknown (set its host), so nothing to compare",
                "server_public_address_unknown",
            )
        expected = await self._expected(server_host)
        addresses = [o for o in observed if not o.startswith("CNAME ")]
        if not addresses:
            return Observation(
                "not-found",
                expected,
                observed,
                now,
                f"{domain} has no A or AAAA record; point it at {', '.join(expected)}",
                "dns_record_missing",
            )
        if set(addresses) <= set(expected) or f"CNAME {server_host.lower()}" in observed:
            return Observation("matched", expected, observed, now, f"{domain} points at the server")
        return Observation(
            "mismatched",
            expected,
            observed,
            now,
            f"{domain} resolves to {', '.join(addresses)}, not to {', '.join(expected)}",
            "dns_points_elsewhere",
        )

    async def _expected(self, server_host: str) -> list[str]:
        """The server's address, or its host name's addresses (a CNAME to it also matches)."""
        try:
            return [str(ipaddress.ip_address(server_host))]
        except ValueError:
            pass
        try:
            found = [a for a in await self.addresses(server_host) if not a.startswith("CNAME ")]
        except dns.exception.DNSException:
            found = []
        return [server_host.lower(), *found]


def challenge_name(domain: str) -> str:
    """Where the TXT ownership token lives: ``_berth-challenge.<domain>``."""
    return f"{CHALLENGE_LABEL}.{domain}"
