"""Request and response models of the DNS-01 routes (a Berth extension, docs/dns01.md)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.certificate_schemas import (
    CertificateAttemptItem,
    CertificateDeleteConfirmation,
    CertificateStatus,
)
from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

TsigAlgorithm = Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"]
"""The names ``coordinator.dns01.rfc2136.ALGORITHMS`` maps (tests/unit/test_dns01.py checks)."""

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)


class CreateDnsProviderRequest(ApiRequest):
    """``POST /dns-providers``: an RFC 2136 server, its zone and TSIG key."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    kind: Literal["rfc2136"] = "rfc2136"
    server_address: str = Field(min_length=1, max_length=260, description="HOST or HOST:PORT")
    zone: str = Field(min_length=1, max_length=253)
    tsig_key_name: str = Field(min_length=1, max_length=253)
    tsig_algorithm: TsigAlgorithm = "hmac-sha256"
    tsig_secret: str = Field(min_length=1, max_length=512, description="base64, as tsig-keygen")


class DnsProviderItem(WireModel):
    """A provider as shown: the TSIG secret is always masked."""

    id: str
    name: str
    kind: Literal["rfc2136"]
    server_address: str
    zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret: str = Field(description="always masked")
    created_at: datetime


class DnsProviderList(WireModel):
    """``GET /dns-providers``."""

    items: list[DnsProviderItem]


class RequestWildcardRequest(ApiRequest):
    """``POST /wildcard-certificates``: ``*.domainName`` and ``domainName`` over DNS-01."""

    domain_name: str = Field(
        min_length=1, max_length=253, description="the base, e.g. apps.example.com"
    )
    dns_provider_id: str = _Id


class WildcardCertificateItem(WireModel):
    """A wildcard certificate's safe metadata (never its key) and its attempts."""

    id: str
    dns_provider_id: str
    domain_name: str
    status: CertificateStatus
    source: Literal["imported"]
    provider_key: str
    challenge_type: Literal["dns-01"]
    acme_directory: str
    issued_at: datetime | None
    expires_at: datetime | None
    renews_at: datetime | None
    fingerprint: str | None
    not_before: datetime | None
    issuer: str | None
    key_algorithm: str | None
    subject_alternative_names: list[str]
    latest_attempt: CertificateAttemptItem | None
    attempts: list[CertificateAttemptItem]
    created_at: datetime


class WildcardCertificateList(WireModel):
    """``GET /wildcard-certificates``."""

    items: list[WildcardCertificateItem]


class DeleteWildcardRequest(ApiRequest):
    """``DELETE /wildcard-certificates/{id}``: the id typed again."""

    confirmation: CertificateDeleteConfirmation
