"""DNS-01 routes: ``/dns-providers`` (RFC 2136 + TSIG) and ``/wildcard-certificates``."""

from coordinator.api.certificate_schemas import (
    CertificateCommandResponse,
    CertificateIdResponse,
    NoCertificateFields,
)
from coordinator.api.certificates import attempt_item
from coordinator.api.dns01_schemas import (
    CreateDnsProviderRequest,
    DeleteWildcardRequest,
    DnsProviderItem,
    DnsProviderList,
    RequestWildcardRequest,
    WildcardCertificateItem,
    WildcardCertificateList,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db.dns01_models import DnsProvider, WildcardCertificate
from coordinator.dns01 import providers, wildcards
from coordinator.dns01.issuer import renews_at
from coordinator.dns01.plugin import ISSUER_KEY, push_to_organization
from coordinator.outbound import guard_for

PROVIDERS = "dns-providers"
WILDCARDS = "wildcard-certificates"


def _provider_item(row: DnsProvider) -> DnsProviderItem:
    host = f"[{row.server_host}]" if ":" in row.server_host else row.server_host
    return DnsProviderItem(
        id=row.id,
        name=row.name,
        kind="rfc2136",
        server_address=f"{host}:{row.server_port}",
        zone=row.zone,
        tsig_key_name=row.tsig_key_name,
        tsig_algorithm=row.tsig_algorithm,
        tsig_secret=providers.MASK,
        created_at=row.created_at,
    )


async def _wildcard_items(rows: list[WildcardCertificate]) -> list[WildcardCertificateItem]:
    attempts = await wildcards.attempts_of([r.id for r in rows])
    items: list[WildcardCertificateItem] = []
    for row in rows:
        mine = [attempt_item(a) for a in attempts[row.id]]  # type: ignore[arg-type]
        items.append(
            WildcardCertificateItem(
                id=row.id,
                dns_provider_id=row.dns_provider_id,
                domain_name=row.domain_name,
                status=row.status,  # type: ignore[arg-type]
                source="imported",
                provider_key=wildcards.PROVIDER_KEY,
                challenge_type="dns-01",
                acme_directory=row.acme_directory,
                issued_at=row.issued_at,
                expires_at=row.not_after,
                renews_at=(
                    renews_at(row.not_before, row.not_after)
                    if row.not_before and row.not_after
                    else None
                ),
                fingerprint=row.fingerprint,
                not_before=row.not_before,
                issuer=row.issuer,
                key_algorithm=row.key_algorithm,
                subject_alternative_names=list(row.subject_alternative_names or []),
                latest_attempt=mine[-1] if mine else None,
                attempts=mine,
                created_at=row.created_at,
            )
        )
    return items


@route(
    "POST",
    "/dns-providers",
    summary="Add an RFC 2136 DNS provider (server, zone, TSIG key) for DNS-01 certificates",
    tag=PROVIDERS,
    permission="dns-providers:write",
    body=CreateDnsProviderRequest,
    response=IdResponse,
    status=201,
    events=("dns-provider.created",),
)
async def create_provider(call: Call) -> IdResponse:
    """The secret is sealed; a private or loopback server needs the operator's permission."""
    body = call.body(CreateDnsProviderRequest)
    row = await providers.create(
        call.actor,
        call.request_id,
        call.keyring,
        guard_for(call.request.app),
        providers.ProviderInput(
            name=body.name,
            server_address=body.server_address,
            zone=body.zone,
            tsig_key_name=body.tsig_key_name,
            tsig_algorithm=body.tsig_algorithm,
            tsig_secret=body.tsig_secret,
        ),
    )
    return IdResponse(id=row.id)


@route(
    "GET",
    "/dns-providers",
    summary="List DNS providers (TSIG secrets masked)",
    tag=PROVIDERS,
    permission="dns-providers:read",
    query=NoQuery,
    response=DnsProviderList,
)
async def list_providers(call: Call) -> DnsProviderList:
    """Oldest first."""
    return DnsProviderList(items=[_provider_item(r) for r in await providers.listed(call.actor)])


@route(
    "GET",
    "/dns-providers/{dnsProviderId}",
    summary="Show a DNS provider (TSIG secret masked)",
    tag=PROVIDERS,
    permission="dns-providers:read",
    query=NoQuery,
    response=DnsProviderItem,
)
async def show_provider(call: Call) -> DnsProviderItem:
    """Another organization's provider is a 404."""
    return _provider_item(await providers.get_provider(call.actor, call.path["dnsProviderId"]))


@route(
    "DELETE",
    "/dns-providers/{dnsProviderId}",
    summary="Delete a DNS provider no wildcard certificate uses",
    tag=PROVIDERS,
    permission="dns-providers:write",
    response=IdResponse,
    events=("dns-provider.deleted",),
)
async def delete_provider(call: Call) -> IdResponse:
    """In use -> 409."""
    provider_id = call.path["dnsProviderId"]
    await providers.delete(call.actor, call.request_id, provider_id)
    return IdResponse(id=provider_id)


@route(
    "POST",
    "/wildcard-certificates",
    summary="Order *.domainName + domainName over DNS-01; every server then serves it",
    tag=WILDCARDS,
    permission="certificates:write",
    body=RequestWildcardRequest,
    response=CertificateCommandResponse,
    status=201,
    events=("wildcard-certificate.issue-requested",),
)
async def request_wildcard(call: Call) -> CertificateCommandResponse:
    """The order runs in the background: follow its attempt on the certificate."""
    body = call.body(RequestWildcardRequest)
    row, attempt_id = await wildcards.request(
        call.actor,
        call.request_id,
        body.domain_name,
        body.dns_provider_id,
        call.request.app[SETTINGS_KEY].dns01_acme_directory,
    )
    call.request.app[ISSUER_KEY].wake()
    return CertificateCommandResponse(certificate_id=row.id, attempt_id=attempt_id)


@route(
    "GET",
    "/wildcard-certificates",
    summary="List wildcard certificates with their facts and attempt history",
    tag=WILDCARDS,
    permission="certificates:read",
    query=NoQuery,
    response=WildcardCertificateList,
)
async def list_wildcards(call: Call) -> WildcardCertificateList:
    """Oldest first."""
    return WildcardCertificateList(items=await _wildcard_items(await wildcards.listed(call.actor)))


@route(
    "GET",
    "/wildcard-certificates/{certificateId}",
    summary="Show a wildcard certificate's facts and attempts (with their diagnostics)",
    tag=WILDCARDS,
    permission="certificates:read",
    query=NoQuery,
    response=WildcardCertificateItem,
)
async def show_wildcard(call: Call) -> WildcardCertificateItem:
    """Another organization's certificate is a 404."""
    row = await wildcards.get_wildcard(call.actor, call.path["certificateId"])
    return (await _wildcard_items([row]))[0]


@route(
    "POST",
    "/wildcard-certificates/{certificateId}/retries",
    summary="Order a wildcard certificate again now (after a failure, or to renew early)",
    tag=WILDCARDS,
    permission="certificates:write",
    body=NoCertificateFields,
    response=CertificateCommandResponse,
    status=201,
    events=(
        "wildcard-certificate.retry-requested",
        "wildcard-certificate.renew-requested",
    ),
)
async def retry_wildcard(call: Call) -> CertificateCommandResponse:
    """The order runs in the background."""
    certificate_id, attempt_id = await wildcards.retry(
        call.actor, call.request_id, call.path["certificateId"]
    )
    call.request.app[ISSUER_KEY].wake()
    return CertificateCommandResponse(certificate_id=certificate_id, attempt_id=attempt_id)


@route(
    "DELETE",
    "/wildcard-certificates/{certificateId}",
    summary="Delete a wildcard certificate; the edges stop serving it",
    tag=WILDCARDS,
    permission="certificates:write",
    body=DeleteWildcardRequest,
    response=CertificateIdResponse,
    events=("wildcard-certificate.deleted",),
)
async def delete_wildcard(call: Call) -> CertificateIdResponse:
    """The confirmation repeats the id; the audit trail keeps its history."""
    body = call.body(DeleteWildcardRequest)
    certificate_id = call.path["certificateId"]
    organization_id = await wildcards.delete(
        call.actor, call.request_id, certificate_id, body.confirmation.certificate_id
    )
    await push_to_organization(call.request.app, organization_id)
    return CertificateIdResponse(certificate_id=certificate_id)
