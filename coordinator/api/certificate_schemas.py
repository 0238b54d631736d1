"""Request and response models of the certificate routes (Appaloft shapes, seed 2.23)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

CertificateStatus = Literal["pending", "active", "failed", "expired", "revoked"]
AttemptStatus = Literal["requested", "issued", "failed", "imported"]
AttemptReason = Literal["issue", "renew", "retry", "import"]

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_OptionalId = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
# A PEM chain of a few certificates, or one key: generous, still far below the body limit.
_Pem = Field(min_length=1, max_length=64 * 1024)


class CertificateAttemptItem(WireModel):
    """One issuance, renewal, retry or import attempt and how it ended."""

    id: str
    status: AttemptStatus
    reason: AttemptReason
    provider_key: str
    challenge_type: str | None
    requested_at: datetime
    issued_at: datetime | None
    expires_at: datetime | None
    failed_at: datetime | None
    error_code: str | None
    failure_phase: str | None
    failure_message: str | None
    retriable: bool | None
    retry_after: datetime | None
    # Berth's addition: the evidence behind the diagnosis (observed DNS targets, the address
    # the CA dialed, the ACME problem type).
    failure_details: dict[str, object] | None = None


class CertificateItem(WireModel):
    """A certificate's safe metadata (never its key) and its attempt history."""

    id: str
    domain_binding_id: str
    domain_name: str
    status: CertificateStatus
    source: Literal["managed", "imported"]
    provider_key: str
    challenge_type: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    fingerprint: str | None
    not_before: datetime | None
    issuer: str | None
    key_algorithm: str | None
    subject_alternative_names: list[str]
    latest_attempt: CertificateAttemptItem | None
    attempts: list[CertificateAttemptItem]
    created_at: datetime


class CertificateList(WireModel):
    """``GET /certificates``."""

    items: list[CertificateItem]


class ListCertificatesQuery(ApiRequest):
    """Query of ``GET /certificates``."""

    domain_binding_id: str | None = _OptionalId
    limit: int = Field(default=100, ge=1, le=500)


class ImportCertificateRequest(ApiRequest):
    """``POST /certificates/import``: a PEM chain (leaf first) and its private key."""

    domain_binding_id: str = _Id
    certificate_chain: str = _Pem
    private_key: str = _Pem


class IssueOrRenewRequest(ApiRequest):
    """``POST /certificates/issue-or-renew``."""

    domain_binding_id: str = _Id


class CertificateCommandResponse(WireModel):
    """Import, issue-or-renew and retry acknowledgement."""

    certificate_id: str
    attempt_id: str


class CertificateIdResponse(WireModel):
    """Revoke and delete acknowledgement."""

    certificate_id: str


class NoCertificateFields(ApiRequest):
    """Retries and revoke take no fields."""


class CertificateDeleteConfirmation(ApiRequest):
    """The id being deleted, typed again."""

    certificate_id: str = _Id


class DeleteCertificateRequest(ApiRequest):
    """``DELETE /certificates/{id}``."""

    confirmation: CertificateDeleteConfirmation
