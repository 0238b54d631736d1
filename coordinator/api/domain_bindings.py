"""Domain-binding routes: parse, authorize, call ``coordinator.domains`` and shape the answer."""

from coordinator.api.certificates import certificate_items
from coordinator.api.domain_routes import route_readiness
from coordinator.api.domain_schemas import (
    ConfigureRouteRequest,
    CreateDomainBindingRequest,
    DeleteDomainBindingRequest,
    DeleteSafety,
    DeleteSafetyEntry,
    DnsObservation,
    DomainBindingItem,
    DomainBindingList,
    DomainBindingShow,
    DomainRouteObservation,
    ListDomainBindingsQuery,
    OwnershipChallenge,
    OwnershipConfirmationRequest,
    VerificationAttemptResponse,
    VerificationRetryRequest,
)
from coordinator.api.resource_views import access_summary, applier
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.appkeys import SETTINGS_KEY
from coordinator.certificates import reads as certificate_reads
from coordinator.db import models
from coordinator.deployments import reads
from coordinator.domains import bindings
from coordinator.domains.dns_check import Resolver, challenge_name

TAG = "domain-bindings"
READ = "domain-bindings:read"
WRITE = "domain-bindings:write"
_PENDING = DnsObservation(
    status="pending",
    expected_targets=[],
    observed_targets=[],
    checked_at=None,
    message="not checked yet: POST .../verification-retries",
)


def _resolver(call: Call) -> Resolver:
    return Resolver(call.request.app[SETTINGS_KEY].dns_resolver)


def binding_item(row: models.DomainBinding) -> DomainBindingItem:
    """The API item of a stored binding."""
    observation = (
        DnsObservation.model_validate(row.dns_observation) if row.dns_observation else _PENDING
    )
    return DomainBindingItem(
        id=row.id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        resource_id=row.resource_id,  # type: ignore[attr-defined]
        server_id=row.server_id,
        destination_id=row.destination_id,
        domain_name=row.domain_name,
        path_prefix=row.path_prefix,
        proxy_kind=row.proxy_kind,  # type: ignore[arg-type]
        tls_mode=row.tls_mode,  # type: ignore[arg-type]
        redirect_to=row.redirect_to,
        redirect_status=row.redirect_status,  # type: ignore[arg-type]
        certificate_policy=row.certificate_policy,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        dns_observation=observation,
        verification_attempt_count=row.verification_attempt_count,
        ownership=OwnershipChallenge(
            method=row.ownership_method,  # type: ignore[arg-type]
            token=row.ownership_token,
            dns_record_name=challenge_name(row.domain_name),
            http_path=bindings.HTTP_TOKEN_PATH + row.ownership_token,
            confirmed_at=row.ownership_confirmed_at,
        ),
        created_at=row.created_at,
    )


async def _delete_safety(row: models.DomainBinding) -> DeleteSafety:
    blockers = [
        DeleteSafetyEntry(
            kind="redirect-source",
            severity="blocking",
            message=f"{source.domain_name} redirects to {row.domain_name}",
            related_entity_type="domain-binding",
            related_entity_id=source.id,
            count=1,
        )
        for source in await bindings.redirect_sources(row)
    ]
    warnings = [
        DeleteSafetyEntry(
            kind="active-certificate",
            severity="warning",
            message=f"the {cert.source} certificate for {cert.domain_name} is deleted with it",
            related_entity_type="certificate",
            related_entity_id=cert.id,
            count=1,
        )
        for cert in await certificate_reads.active_of_binding(row.id)
    ]
    return DeleteSafety(
        domain_binding_id=row.id,
        safe_to_delete=not blockers,
        blockers=blockers,
        warnings=warnings,
    )


@route(
    "POST",
    "/domain-bindings",
    summary="Bind a custom domain (and optional path prefix) to a resource",
    tag=TAG,
    permission=WRITE,
    body=CreateDomainBindingRequest,
    response=IdResponse,
    status=201,
    events=("domain-binding.created",),
)
async def create(call: Call) -> IdResponse:
    """Store the binding; a name + path already bound anywhere is a 409."""
    body = call.body(CreateDomainBindingRequest)
    new = bindings.NewBinding(**body.model_dump(by_alias=False))
    return IdResponse(id=await bindings.create(call.actor, call.request_id, new))


@route(
    "GET",
    "/domain-bindings",
    summary="List domain bindings",
    tag=TAG,
    permission=READ,
    query=ListDomainBindingsQuery,
    response=DomainBindingList,
)
async def list_bindings(call: Call) -> DomainBindingList:
    """Bindings the caller may see, oldest first."""
    query = call.query(ListDomainBindingsQuery)
    rows = await bindings.listed(
        call.actor,
        project_id=query.project_id,
        environment_id=query.environment_id,
        resource_id=query.resource_id,
        limit=query.limit,
    )
    return DomainBindingList(items=[binding_item(r) for r in rows])


@route(
    "GET",
    "/domain-bindings/{domainBindingId}",
    summary="Show a binding with its route readiness, DNS observation and delete safety",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DomainBindingShow,
)
async def show(call: Call) -> DomainBindingShow:
    """One binding; ``proxyReadiness`` and ``certificates`` are what the agent reported."""
    row = await bindings.get_binding(call.actor, call.path["domainBindingId"])
    item = binding_item(row)
    deployments = await reads.all_of_resource(item.resource_id)
    applied = applier(row, deployments)
    observation = (
        DomainRouteObservation(
            observed_at=applied.finished_at or applied.created_at, deployment_id=applied.id
        )
        if applied is not None
        else None
    )
    return DomainBindingShow(
        binding=item,
        generated_access_fallback=access_summary(deployments, None).latest_generated_access_route,
        route_readiness=route_readiness(item, observation),
        proxy_readiness=row.proxy_readiness,  # type: ignore[arg-type]
        certificates=await certificate_items(
            await certificate_reads.listed(call.actor, domain_binding_id=row.id, limit=100)
        ),
        delete_safety=await _delete_safety(row),
    )


@route(
    "GET",
    "/domain-bindings/{domainBindingId}/delete-check",
    summary="Whether a binding can be deleted (nothing redirects to it)",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DeleteSafety,
)
async def delete_check(call: Call) -> DeleteSafety:
    """Blockers are bindings that redirect to this one."""
    row = await bindings.get_binding(call.actor, call.path["domainBindingId"])
    return await _delete_safety(row)


@route(
    "DELETE",
    "/domain-bindings/{domainBindingId}",
    summary="Delete a binding (confirmation repeats its id)",
    tag=TAG,
    permission=WRITE,
    body=DeleteDomainBindingRequest,
    response=IdResponse,
    events=("domain-binding.deleted",),
)
async def delete(call: Call) -> IdResponse:
    """Deletes the route intent; generated access and deployment history stay."""
    body = call.body(DeleteDomainBindingRequest)
    binding_id = call.path["domainBindingId"]
    await bindings.delete(
        call.actor, call.request_id, binding_id, body.confirmation.domain_binding_id
    )
    return IdResponse(id=binding_id)


@route(
    "POST",
    "/domain-bindings/{domainBindingId}/route",
    summary="Serve traffic, or redirect to another binding's domain",
    tag=TAG,
    permission=WRITE,
    body=ConfigureRouteRequest,
    response=IdResponse,
    events=("domain-binding.route-configured",),
)
async def configure_route(call: Call) -> IdResponse:
    """No ``redirectTo`` serves; a redirect chain that leads back is a 400."""
    body = call.body(ConfigureRouteRequest)
    binding_id = call.path["domainBindingId"]
    await bindings.configure_route(
        call.actor, call.request_id, binding_id, body.redirect_to, body.redirect_status
    )
    return IdResponse(id=binding_id)


@route(
    "POST",
    "/domain-bindings/{domainBindingId}/ownership-confirmations",
    summary="Prove control of the domain (DNS TXT, HTTP token, or audited manual override)",
    tag=TAG,
    permission=WRITE,
    body=OwnershipConfirmationRequest,
    response=VerificationAttemptResponse,
    errors=(503,),
    events=("domain-binding.ownership-confirmed", "domain-binding.ownership-challenge-requested"),
)
async def confirm_ownership(call: Call) -> VerificationAttemptResponse:
    """A DNS token not published yet is a 409 with what was observed; nothing stored."""
    body = call.body(OwnershipConfirmationRequest)
    binding_id = call.path["domainBindingId"]
    attempt = await bindings.confirm_ownership(
        call.actor, call.request_id, binding_id, body.method, body.reason, _resolver(call)
    )
    return VerificationAttemptResponse(id=binding_id, verification_attempt_id=attempt)


@route(
    "POST",
    "/domain-bindings/{domainBindingId}/verification-retries",
    summary="Look the domain up again and store the DNS observation",
    tag=TAG,
    permission=WRITE,
    body=VerificationRetryRequest,
    response=VerificationAttemptResponse,
    events=("domain-binding.verification-retried",),
)
async def retry_verification(call: Call) -> VerificationAttemptResponse:
    """Expected targets are the public address of the binding's server."""
    binding_id = call.path["domainBindingId"]
    attempt = await bindings.observe(call.actor, call.request_id, binding_id, _resolver(call))
    return VerificationAttemptResponse(id=binding_id, verification_attempt_id=attempt)
