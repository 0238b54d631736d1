"""RFC 2136 dynamic updates signed with TSIG: publish, check and withdraw ACME TXT records.

Each step that can go wrong raises ``Dns01Failure`` with a stable ``error_code`` (see
docs/dns01.md), so an attempt tells "the server refused our key" from "that server is not the
zone's primary" from "the record never became visible".
"""

import time
from dataclasses import dataclass, field
from typing import Final

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

ALGORITHMS: Final = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}
_TTL: Final = 60


@dataclass
class Dns01Failure(Exception):
    """One failed DNS-01 step, in the attempt fields' terms."""

    failure_phase: str
    error_code: str
    failure_message: str
    retriable: bool
    details: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.error_code}: {self.failure_message}"


@dataclass(frozen=True)
class Target:
    """Where and how to update: the zone's primary, the zone, and the TSIG key."""

    host: str
    port: int
    zone: str
    key_name: str
    algorithm: str
    secret: str
    timeout: float = 10.0

    def _keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        try:
            return dns.tsigkeyring.from_text(
                {self.key_name: (ALGORITHMS[self.algorithm], self.secret)}
            )
        except (ValueError, KeyError, dns.exception.DNSException) as exc:
            raise Dns01Failure(
                "dns", "dns_tsig_key_invalid", f"the TSIG key cannot be used: {exc}", False
            ) from exc

    def _failed(self, code: str, message: str, retriable: bool) -> Dns01Failure:
        return Dns01Failure(
            "dns",
            code,
            message,
            retriable,
            {"server": f"{self.host}:{self.port}", "zone": self.zone},
        )

    def _ask(self, query: dns.message.Message) -> dns.message.Message:
        try:
            return dns.query.tcp(query, self.host, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as exc:
            raise self._failed(
                "dns_tsig_refused",
                f"{self.host}:{self.port} refused the TSIG key {self.key_name!r} "
                f"({type(exc).__name__}: wrong secret, algorithm or key name)",
                False,
            ) from exc
        except dns.tsig.BadSignature as exc:
            raise self._failed(
                "dns_tsig_refused",
                f"the answer of {self.host}:{self.port} is not signed with the TSIG key "
                f"{self.key_name!r} (wrong secret?)",
                False,
            ) from exc
        except (dns.exception.Timeout, OSError) as exc:
            raise self._failed(
                "dns_server_unreachable",
                f"the DNS server {self.host}:{self.port} did not answer: {exc}",
                True,
            ) from exc

    def check_authoritative(self) -> None:
        """The server must answer for the zone with authority (its SOA, the AA flag)."""
        answer = self._ask(dns.message.make_query(self.zone, dns.rdatatype.SOA))
        soa = [r for r in answer.answer if r.rdtype == dns.rdatatype.SOA]
        if answer.rcode() != dns.rcode.NOERROR or not soa or not answer.flags & dns.flags.AA:
            raise self._failed(
                "dns_zone_not_authoritative",
                f"{self.host}:{self.port} is not authoritative for {self.zone} (answered "
                f"{dns.rcode.to_text(answer.rcode())} without the zone's SOA): point the "
                "provider at the zone's primary server",
                False,
            )

    def _update(self, message: dns.update.UpdateMessage, what: str) -> None:
        answer = self._ask(message)
        rcode = answer.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED) and answer.tsig_error != 0:
            raise self._failed(
                "dns_tsig_refused",
                f"{self.host}:{self.port} refused the TSIG key {self.key_name!r} "
                f"(TSIG error {answer.tsig_error})",
                False,
            )
        if rcode == dns.rcode.REFUSED:
            raise self._failed(
                "dns_update_refused",
                f"{self.host}:{self.port} refused to {what} (REFUSED): its update policy "
                f"does not let {self.key_name!r} change TXT records there",
                False,
            )
        if rcode == dns.rcode.NOTAUTH:
            raise self._failed(
                "dns_zone_not_authoritative",
                f"{self.host}:{self.port} is not authoritative for {self.zone} (NOTAUTH)",
                False,
            )
        raise self._failed(
            "dns_update_failed",
            f"{self.host}:{self.port} answered {dns.rcode.to_text(rcode)} to {what}",
            rcode == dns.rcode.SERVFAIL,
        )

    def _message(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(
            self.zone,
            keyring=self._keyring(),
            keyname=dns.name.from_text(self.key_name),
            keyalgorithm=ALGORITHMS[self.algorithm],
        )

    def publish(self, name: str, values: list[str]) -> None:
        """Add every value as a TXT record at ``name`` (added, never replaced: a wildcard and
        its apex share one name)."""
        message = self._message()
        for value in values:
            message.add(dns.name.from_text(name), _TTL, "TXT", f'"{value}"')
        self._update(message, f"add TXT records at {name}")

    def withdraw(self, name: str, values: list[str]) -> None:
        """Delete exactly those TXT values at ``name``."""
        message = self._message()
        for value in values:
            message.delete(dns.name.from_text(name), "TXT", f'"{value}"')
        self._update(message, f"delete TXT records at {name}")

    def wait_visible(self, name: str, values: list[str], deadline_seconds: float) -> None:
        """Until the server answers every value at ``name`` (else ``dns_txt_not_visible``)."""
        deadline = time.monotonic() + deadline_seconds
        seen: set[str] = set()
        delay = 0.05
        while True:
            answer = self._ask(dns.message.make_query(name, dns.rdatatype.TXT))
            seen = {
                b"".join(rdata.strings).decode()
                for rrset in answer.answer
                if rrset.rdtype == dns.rdatatype.TXT
                for rdata in rrset
            }
            if set(values) <= seen:
                return
            if time.monotonic() >= deadline:
                raise Dns01Failure(
                    "dns",
                    "dns_txt_not_visible",
                    f"{name} does not answer the published TXT records after "
                    f"{deadline_seconds:.0f} s (the update was accepted but is not served)",
                    True,
                    {"server": f"{self.host}:{self.port}", "name": name, "observed": sorted(seen)},
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
