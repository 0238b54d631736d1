"""Certificate routes: parse, authorize, call ``coordinator.certificates`` and shape the answer."""

from coordinator.api.certificate_schemas import (
    CertificateAttemptItem,
    CertificateCommandResponse,
    CertificateIdResponse,
    CertificateItem,
    CertificateList,
    DeleteCertificateRequest,
    ImportCertificateRequest,
    IssueOrRenewRequest,
    ListCertificatesQuery,
    NoCertificateFields,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import NoQuery
from coordinator.certificates import CERTIFICATES_KEY, commands, imports, reads
from coordinator.db.certificate_models import Certificate, CertificateAttempt

TAG = "certificates"
READ = "certificates:read"
WRITE = "certificates:write"


def attempt_item(row: CertificateAttempt) -> CertificateAttemptItem:
    """The API item of a stored attempt."""
    return CertificateAttemptItem(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        reason=row.reason,  # type: ignore[arg-type]
        provider_key=row.provider_key,
        challenge_type=row.challenge_type,
        requested_at=row.requested_at,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        failed_at=row.failed_at,
        error_code=row.error_code,
        failure_phase=row.failure_phase,
        failure_message=row.failure_message,
        retriable=row.retriable,
        retry_after=row.retry_after,
        failure_details=row.failure_details,
    )


def certificate_item(row: Certificate, attempts: list[CertificateAttempt]) -> CertificateItem:
    """The API item of a stored certificate (its key never leaves the database)."""
    items = [attempt_item(a) for a in attempts]
    return CertificateItem(
        id=row.id,
        domain_binding_id=row.domain_binding_id,  # type: ignore[attr-defined]
        domain_name=row.domain_name,
        status=row.status,  # type: ignore[arg-type]
        source=row.source,  # type: ignore[arg-type]
        provider_key=row.provider_key,
        challenge_type=row.challenge_type,
        issued_at=row.issued_at,
        expires_at=row.not_after,
        fingerprint=row.fingerprint,
        not_before=row.not_before,
        issuer=row.issuer,
        key_algorithm=row.key_algorithm,
        subject_alternative_names=list(row.subject_alternative_names or []),
        latest_attempt=items[-1] if items else None,
        attempts=items,
        created_at=row.created_at,
    )


async def certificate_items(rows: list[Certificate]) -> list[CertificateItem]:
    """API items for ``rows`` (attempts read in one query)."""
    attempts = await reads.attempts_of([r.id for r in rows])
    return [certificate_item(r, attempts[r.id]) for r in rows]


@route(
    "GET",
    "/certificates",
    summary="List certificates with their facts and attempt history",
    tag=TAG,
    permission=READ,
    query=ListCertificatesQuery,
    response=CertificateList,
)
async def list_certificates(call: Call) -> CertificateList:
    """Certificates of the bindings the caller may see, oldest first."""
    query = call.query(ListCertificatesQuery)
    rows = await reads.listed(
        call.actor, domain_binding_id=query.domain_binding_id, limit=query.limit
    )
    return CertificateList(items=await certificate_items(rows))


@route(
    "GET",
    "/certificates/{certificateId}",
    summary="Show a certificate's safe metadata and attempt history",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=CertificateItem,
)
async def show(call: Call) -> CertificateItem:
    """Issuer, SANs, dates and fingerprint as the agent read them from the served PEM."""
    row = await reads.get_certificate(call.actor, call.path["certificateId"])
    return (await certificate_items([row]))[0]


@route(
    "POST",
    "/certificates/import",
    summary="Import a PEM certificate chain and key for a domain binding; the edge serves it",
    tag=TAG,
    permission=WRITE,
    body=ImportCertificateRequest,
    response=CertificateCommandResponse,
    status=201,
    events=("certificate.imported",),
)
async def import_certificate(call: Call) -> CertificateCommandResponse:
    """Key matches, chain ordered, name covered, valid now, else 400 and nothing stored."""
    body = call.body(ImportCertificateRequest)
    certificate_id, attempt_id, server_id = await imports.import_certificate(
        call.actor,
        call.request_id,
        call.keyring,
        domain_binding_id=body.domain_binding_id,
        certificate_chain=body.certificate_chain,
        private_key=body.private_key,
    )
    # An offline agent gets the certificate when it connects.
    _ = await call.request.app[CERTIFICATES_KEY].push(server_id)
    return CertificateCommandResponse(certificate_id=certificate_id, attempt_id=attempt_id)


@route(
    "POST",
    "/certificates/issue-or-renew",
    summary="Have the edge obtain the binding's ACME certificate now",
    tag=TAG,
    permission=WRITE,
    body=IssueOrRenewRequest,
    response=CertificateCommandResponse,
    status=201,
    errors=(503,),
    events=("certificate.issue-requested", "certificate.renew-requested"),
)
async def issue_or_renew(call: Call) -> CertificateCommandResponse:
    """Unconfirmed ownership, tlsMode other than auto, or a valid certificate -> 409."""
    body = call.body(IssueOrRenewRequest)
    cert, attempt_id = await commands.issue_or_renew(
        call.actor, call.request_id, body.domain_binding_id, _kick(call)
    )
    return CertificateCommandResponse(certificate_id=cert.id, attempt_id=attempt_id)


@route(
    "POST",
    "/certificates/{certificateId}/retries",
    summary="Retry a retriable ACME failure now instead of after the edge's back-off",
    tag=TAG,
    permission=WRITE,
    body=NoCertificateFields,
    response=CertificateCommandResponse,
    status=201,
    errors=(503,),
    events=("certificate.retry-requested",),
)
async def retry(call: Call) -> CertificateCommandResponse:
    """Only after a failed, retriable latest attempt of a managed certificate."""
    cert, attempt_id = await commands.retry(
        call.actor, call.request_id, call.path["certificateId"], _kick(call)
    )
    return CertificateCommandResponse(certificate_id=cert.id, attempt_id=attempt_id)


@route(
    "POST",
    "/certificates/{certificateId}/revoke",
    summary="Revoke a certificate: an imported one is unloaded, a managed one revoked at its CA",
    tag=TAG,
    permission=WRITE,
    body=NoCertificateFields,
    response=CertificateIdResponse,
    errors=(502, 503, 504),
    events=("certificate.revoked", "certificate.renew-requested"),
)
async def revoke(call: Call) -> CertificateIdResponse:
    """An imported certificate: the edge unloads it. A managed one: the agent revokes it at the
    CA (502 with the CA's reason when it refuses, 503 when the agent is offline; nothing
    changes then), and the edge obtains a new one at once."""
    listener = call.request.app[CERTIFICATES_KEY]
    cert = await commands.revoke(
        call.actor, call.request_id, call.path["certificateId"], listener.revoke_at_ca, _kick(call)
    )
    _ = await listener.push(cert.server_id)
    return CertificateIdResponse(certificate_id=cert.id)


@route(
    "DELETE",
    "/certificates/{certificateId}",
    summary="Delete a certificate that is not in use (confirmation repeats its id)",
    tag=TAG,
    permission=WRITE,
    body=DeleteCertificateRequest,
    response=CertificateIdResponse,
    events=("certificate.deleted",),
)
async def delete(call: Call) -> CertificateIdResponse:
    """An active certificate is a 409; the audit trail keeps the history."""
    body = call.body(DeleteCertificateRequest)
    certificate_id = call.path["certificateId"]
    await commands.delete(
        call.actor, call.request_id, certificate_id, body.confirmation.certificate_id
    )
    return CertificateIdResponse(certificate_id=certificate_id)


def _kick(call: Call) -> commands.Kick:
    return call.request.app[CERTIFICATES_KEY].retry_now
