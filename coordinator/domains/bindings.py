"""Domain-binding rules and persistence: create, route, ownership, observation, delete."""

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.domains.dns_check import Resolver, challenge_name
from coordinator.domains.names import normalize_domain, normalize_path_prefix
from coordinator.ids import new_id
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound

OVERRIDE_PERMISSION: Final = "domain-bindings:override-ownership"
HTTP_TOKEN_PATH: Final = "/.well-known/berth-domain/"  # noqa: S105 (a path, not a secret)
_MAX_REDIRECT_HOPS: Final = 16
# One coordinator process owns the database's writes, so an in-process lock serialises them.
_REDIRECT_CHANGES: Final = asyncio.Lock()


@dataclass(frozen=True)
class NewBinding:
    """A create request after parsing (names not normalised yet)."""

    project_id: str
    environment_id: str
    resource_id: str
    server_id: str | None
    destination_id: str | None
    domain_name: str
    path_prefix: str | None
    proxy_kind: str
    tls_mode: str
    certificate_policy: str
    redirect_to: str | None
    redirect_status: int | None


def _organization(actor: Principal) -> QuerySet[models.DomainBinding]:
    return models.DomainBinding.filter(organization_id=actor.organization_id)


def visible(actor: Principal) -> QuerySet[models.DomainBinding]:
    """Bindings of the caller's organisation within its project/environment/resource scope."""
    rows = _organization(actor)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.resource_ids:
        rows = rows.filter(resource_id__in=list(actor.resource_ids))
    return rows


async def listed(
    actor: Principal,
    *,
    project_id: str | None,
    environment_id: str | None,
    resource_id: str | None,
    limit: int,
) -> list[models.DomainBinding]:
    """Visible bindings matching the filters given, oldest first."""
    rows = visible(actor)
    if project_id:
        rows = rows.filter(project_id=project_id)
    if environment_id:
        rows = rows.filter(environment_id=environment_id)
    if resource_id:
        rows = rows.filter(resource_id=resource_id)
    return await rows.order_by("id").limit(limit)


async def get_binding(actor: Principal, binding_id: str) -> models.DomainBinding:
    """A binding the caller may see, or ``NotFound`` (out of scope looks missing)."""
    return await lookup.first_or_404(actor, visible(actor), "domain binding", binding_id)


async def _resource(actor: Principal, body: NewBinding) -> models.Resource:
    row = await models.Resource.get_or_none(
        id=body.resource_id, project__organization_id=actor.organization_id
    )
    if row is None or not actor.can_see_resource(
        row.project_id,  # type: ignore[attr-defined]
        row.environment_id,  # type: ignore[attr-defined]
        row.id,
    ):
        raise NotFound(f"resource {body.resource_id!r} not found")
    if (row.project_id, row.environment_id) != (body.project_id, body.environment_id):  # type: ignore[attr-defined]
        raise InvalidRequest(
            "projectId and environmentId must be the resource's own",
            details={"resourceId": row.id},
        )
    if row.lifecycle_status != "active":
        raise Conflict(f"resource is {row.lifecycle_status}", details={"resourceId": row.id})
    return row


async def _server_id(actor: Principal, resource_id: str, requested: str | None) -> str | None:
    """The server named in the request (must be visible) or the latest deployment's."""
    if requested is not None:
        server = await models.Server.get_or_none(
            id=requested, organization_id=actor.organization_id
        )
        if server is None or not actor.can_see_server(server.id):
            raise NotFound(f"server {requested!r} not found")
        return server.id
    latest = await models.Deployment.filter(resource_id=resource_id).order_by("-id").first()
    return latest.server_id if latest is not None else None


def _redirect(
    redirect_to: str | None, redirect_status: int | None
) -> tuple[str | None, int | None]:
    if redirect_to is None:
        if redirect_status is not None:
            raise InvalidRequest("redirectStatus needs redirectTo")
        return None, None
    return normalize_domain(redirect_to), redirect_status or 301


async def _check_redirect(actor: Principal, domain: str, target: str | None) -> None:
    """The target must be a binding the caller can see, and following it must not lead back."""
    if target is None:
        return
    if target == domain:
        raise InvalidRequest(f"{domain} cannot redirect to itself")
    seen = {domain}
    current: str | None = target
    for _ in range(_MAX_REDIRECT_HOPS):
        if current is None:
            return
        # The target must be visible to the caller; later hops are followed through the whole
        # organization, so a loop through bindings outside the caller's scope is still found.
        rows = visible(actor) if current == target else _organization(actor)
        row = await rows.filter(domain_name=current).order_by("path_prefix").first()
        if row is None:
            if current == target:
                raise NotFound(f"no domain binding for redirect target {target!r}")
            return
        if current in seen:
            raise InvalidRequest(
                f"redirecting {domain} to {target} makes a loop",
                details={"loop": [*seen, current]},
            )
        seen.add(current)
        current = row.redirect_to
    raise InvalidRequest(f"redirect chain from {target} is longer than {_MAX_REDIRECT_HOPS}")


async def _record(
    actor: Principal, request_id: str, event: str, binding_id: str, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"domain-binding.{event}",
        aggregate_type="domain-binding",
        aggregate_id=binding_id,
        payload=payload,
        request_id=request_id,
    )


def _duplicate(domain: str, path_prefix: str) -> Conflict:
    return Conflict(
        f"{domain}{'' if path_prefix == '/' else path_prefix} is already bound",
        details={"domainName": domain, "pathPrefix": path_prefix},
    )


async def create(actor: Principal, request_id: str, body: NewBinding) -> str:
    """Validate and store a binding (status ``pending_verification``); return its id."""
    domain = normalize_domain(body.domain_name)
    path_prefix = normalize_path_prefix(body.path_prefix)
    redirect_to, redirect_status = _redirect(body.redirect_to, body.redirect_status)
    resource = await _resource(actor, body)
    server_id = await _server_id(actor, resource.id, body.server_id)
    await _check_redirect(actor, domain, redirect_to)
    binding_id = new_id("dbd")
    try:
        async with in_transaction():
            if await models.DomainBinding.exists(domain_name=domain, path_prefix=path_prefix):
                raise _duplicate(domain, path_prefix)
            # A host belongs to one organization: another one binding a path under it would
            # take over part of a site it does not own (a manual override skips the DNS proof).
            if (
                await models.DomainBinding.filter(domain_name=domain)
                .exclude(organization_id=actor.organization_id)
                .exists()
            ):
                raise _duplicate(domain, path_prefix)
            _ = await models.DomainBinding.create(
                id=binding_id,
                organization_id=actor.organization_id,
                project_id=body.project_id,
                environment_id=body.environment_id,
                resource_id=resource.id,
                server_id=server_id,
                destination_id=body.destination_id,
                domain_name=domain,
                path_prefix=path_prefix,
                proxy_kind=body.proxy_kind,
                tls_mode=body.tls_mode,
                certificate_policy=body.certificate_policy,
                redirect_to=redirect_to,
                redirect_status=redirect_status,
                ownership_token=secrets.token_urlsafe(24),
                created_at=datetime.now(UTC),
            )
            await _record(
                actor,
                request_id,
                "created",
                binding_id,
                domainName=domain,
                pathPrefix=path_prefix,
                resourceId=resource.id,
                redirectTo=redirect_to,
                tlsMode=body.tls_mode,
            )
    except IntegrityError as exc:  # a concurrent create of the same name won the race
        raise _duplicate(domain, path_prefix) from exc
    return binding_id


async def configure_route(
    actor: Principal,
    request_id: str,
    binding_id: str,
    redirect_to: str | None,
    redirect_status: int | None,
) -> None:
    """Serve traffic (no target) or redirect to another binding's domain."""
    row = await get_binding(actor, binding_id)
    target, status = _redirect(redirect_to, redirect_status)
    # Checked and written under one lock: two changes at once (a -> b, b -> a) would each
    # pass the check alone and make a loop together.
    async with _REDIRECT_CHANGES, in_transaction():
        await _check_redirect(actor, row.domain_name, target)
        # The edge serves the old route until the next deployment carries the new one.
        await models.DomainBinding.filter(id=row.id).update(
            redirect_to=target, redirect_status=status, proxy_readiness="not-ready"
        )
        await _record(
            actor,
            request_id,
            "route-configured",
            row.id,
            resourceId=row.resource_id,  # type: ignore[attr-defined]
            redirectTo=target,
            redirectStatus=status,
        )


async def redirect_sources(row: models.DomainBinding) -> list[models.DomainBinding]:
    """Bindings that redirect to ``row``'s domain (deleting it would leave them dangling)."""
    others = models.DomainBinding.filter(redirect_to=row.domain_name).exclude(id=row.id)
    if await models.DomainBinding.filter(domain_name=row.domain_name).exclude(id=row.id).exists():
        return []  # another binding of the same name (other path) still answers for it
    return await others.order_by("id")


async def delete(actor: Principal, request_id: str, binding_id: str, confirmed: str) -> None:
    """Delete after the typed confirmation matches and nothing redirects to the binding."""
    row = await get_binding(actor, binding_id)
    if confirmed != row.id:
        raise InvalidRequest(
            "confirmation.domainBindingId must repeat the id being deleted",
            details={"domainBindingId": row.id},
        )
    async with in_transaction():
        blockers = await redirect_sources(row)
        if blockers:
            raise Conflict(
                f"{len(blockers)} binding(s) redirect to {row.domain_name}; change them first",
                details={"redirectSources": [b.id for b in blockers]},
            )
        _ = await models.DomainBinding.filter(id=row.id).delete()
        await _record(
            actor,
            request_id,
            "deleted",
            row.id,
            resourceId=row.resource_id,  # type: ignore[attr-defined]
            domainName=row.domain_name,
        )


async def _server_host(row: models.DomainBinding) -> str | None:
    if row.server_id is None:
        return None
    server = await models.Server.get_or_none(id=row.server_id)
    return server.host if server is not None else None


async def observe(actor: Principal, request_id: str, binding_id: str, resolver: Resolver) -> str:
    """Look the name up again, store the observation; return the verification attempt id."""
    row = await get_binding(actor, binding_id)
    observation = await resolver.observe(row.domain_name, await _server_host(row))
    attempt_id = new_id("dva")
    async with in_transaction():
        await models.DomainBinding.filter(id=row.id).update(
            dns_observation=observation.as_json(),
            verification_attempt_count=row.verification_attempt_count + 1,
            latest_verification_attempt_id=attempt_id,
        )
        await _record(
            actor,
            request_id,
            "verification-retried",
            row.id,
            resourceId=row.resource_id,  # type: ignore[attr-defined]
            verificationAttemptId=attempt_id,
            dnsStatus=observation.status,
        )
    return attempt_id


async def confirm_ownership(
    actor: Principal,
    request_id: str,
    binding_id: str,
    method: str,
    reason: str | None,
    resolver: Resolver,
) -> str:
    """Prove control of the domain; return the verification attempt id.

    ``dns-txt`` checks ``_berth-challenge.<domain>`` now (a miss is a 409, nothing stored);
    ``http-token`` records that the agent should serve the token (the agent side comes later,
    so the binding stays pending); ``manual`` needs the override permission and a reason.
    """
    row = await get_binding(actor, binding_id)
    confirmed_at: datetime | None = None
    if method == "manual":
        if not actor.allows(OVERRIDE_PERMISSION):
            raise Forbidden(
                f"a manual ownership override needs {OVERRIDE_PERMISSION!r}",
                details={"requiredPermission": OVERRIDE_PERMISSION},
            )
        if reason is None:
            raise InvalidRequest("a manual ownership override needs a reason")
        confirmed_at = datetime.now(UTC)
    elif method == "dns-txt":
        name = challenge_name(row.domain_name)
        found = await resolver.txt(name)
        if row.ownership_token not in found:
            raise Conflict(
                f"TXT record {name} does not hold this binding's token yet",
                details={"recordName": name, "observedValues": found},
            )
        confirmed_at = datetime.now(UTC)
    attempt_id = new_id("dva")
    async with in_transaction():
        await models.DomainBinding.filter(id=row.id).update(
            ownership_method=method,
            ownership_confirmed_at=confirmed_at,
            status="bound" if confirmed_at is not None else "pending_verification",
            # The edge serves a new HTTP token only once a deployment carries it.
            proxy_readiness="not-ready" if method == "http-token" else row.proxy_readiness,
            verification_attempt_count=row.verification_attempt_count + 1,
            latest_verification_attempt_id=attempt_id,
        )
        await _record(
            actor,
            request_id,
            "ownership-confirmed" if confirmed_at else "ownership-challenge-requested",
            row.id,
            resourceId=row.resource_id,  # type: ignore[attr-defined]
            method=method,
            reason=reason,
            verificationAttemptId=attempt_id,
        )
    return attempt_id
