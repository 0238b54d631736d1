"""Certificate state the agent learned from its edge proxy (agent -> coordinator, unsolicited).

The agent reads what Caddy actually holds (its certificate storage) and what Caddy logged when
an ACME order failed; the coordinator stores it per domain binding. Each report is the whole
current picture of the server's edge, so a lost or repeated report is harmless.
"""

from datetime import datetime
from typing import Literal

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

CERTIFICATES_CAPABILITY = "certificates.v1"
# The agent renews a valid certificate early when ``CertificateRetry.renew`` asks.
CERTIFICATES_RENEW_CAPABILITY = "certificates.renew.v1"
# The agent revokes a certificate its edge obtained when ``CertificateRevoke`` asks.
CERTIFICATES_REVOKE_CAPABILITY = "certificates.revoke.v1"
"""Advertised in ``hello.capabilities`` by agents that send ``certificate_report``."""

MAX_REPORTED = 2000

FailurePhase = Literal["challenge", "dns", "order", "ca", "account"]


class CertificateObservation(WireModel):
    """One certificate the edge holds for ``domainName`` (read from the PEM Caddy stored)."""

    domain_name: str = Field(max_length=253)
    source: Literal["managed", "imported"] = "managed"
    issuer: str = Field(max_length=500)
    subject_alternative_names: list[str] = Field(max_length=100)
    not_before: datetime
    not_after: datetime
    fingerprint: str = Field(max_length=100, description="SHA-256 of the DER leaf, hex")
    key_algorithm: str = Field(max_length=40)
    ca_directory: str | None = Field(default=None, max_length=500)


class CertificateFailure(WireModel):
    """One failed ACME attempt for ``domainName``, classified from Caddy's log lines.

    ``errorCode`` is stable (see docs/certificates.md); ``failureMessage`` is what the CA or
    Caddy said. ``address`` is where the CA tried to connect, when the error names it.
    """

    domain_name: str = Field(max_length=253)
    occurred_at: datetime
    failure_phase: FailurePhase
    error_code: str = Field(max_length=60)
    failure_message: str = Field(max_length=2000)
    retriable: bool
    retry_after: datetime | None = None
    challenge_type: str | None = Field(default=None, max_length=20)
    address: str | None = Field(default=None, max_length=100)
    problem_type: str | None = Field(default=None, max_length=200)


class CertificateReport(WireModel):
    """The edge's certificates now, plus the failures logged since the agent started."""

    type: Literal["certificate_report"] = "certificate_report"
    id: int
    certificates: list[CertificateObservation] = Field(max_length=MAX_REPORTED)
    failures: list[CertificateFailure] = Field(default_factory=list, max_length=MAX_REPORTED)


class ImportedCertificate(WireModel):
    """A certificate a user imported for a domain, with its key (PEM, never logged)."""

    certificate_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    domain_name: str = Field(max_length=253)
    certificate_chain: str = Field(max_length=64 * 1024)
    private_key: str = Field(max_length=64 * 1024)


class CertificateLoad(WireModel):
    """Coordinator -> agent: the whole set of imported certificates its edge must serve.

    Sent when the link comes up and after each import or removal; the agent replaces what its
    edge loaded before (so a lost frame is repaired by the next one).
    """

    type: Literal["certificate_load"] = "certificate_load"
    id: int
    certificates: list[ImportedCertificate] = Field(max_length=MAX_REPORTED)


class CertificateRetry(WireModel):
    """Coordinator -> agent: have the edge try to obtain ``domainNames``' certificates now,
    instead of at the end of its own back-off; with ``renew``, renew their valid certificates
    now instead of when they are due."""

    type: Literal["certificate_retry"] = "certificate_retry"
    id: int
    domain_names: list[str] = Field(min_length=1, max_length=100)
    renew: bool = Field(
        default=False,
        description="renew the names' valid certificates now (sent only to an agent that "
        "advertises certificates.renew.v1)",
    )


class CertificateRevoke(WireModel):
    """Coordinator -> agent: revoke, at the CA that issued it, the certificate the edge holds
    for ``domainName`` if it is still the one with ``fingerprint`` (answered by a
    ``certificate_revoke_result``; sent only to agents advertising certificates.revoke.v1)."""

    type: Literal["certificate_revoke"] = "certificate_revoke"
    id: int
    domain_name: str = Field(max_length=253)
    fingerprint: str = Field(max_length=100, description="SHA-256 of the DER leaf, hex")


class CertificateRevokeResult(WireModel):
    """Agent -> coordinator: the answer to ``certificate_revoke`` ``re``."""

    type: Literal["certificate_revoke_result"] = "certificate_revoke_result"
    id: int
    re: int
    status: Literal["revoked", "failed"]
    message: str = Field(default="", max_length=2000, description="why not, when failed")


CertificatesAgentMessage = CertificateReport | CertificateRevokeResult
CertificatesCoordinatorMessage = CertificateLoad | CertificateRetry | CertificateRevoke
CERTIFICATES_AGENT_TYPES = message_types(CertificatesAgentMessage)
CERTIFICATES_COORDINATOR_TYPES = message_types(CertificatesCoordinatorMessage)
