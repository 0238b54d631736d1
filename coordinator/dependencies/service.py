"""Dependency-resource rules and persistence: plan, accept, provision, import, list, rename,
delete. Credentials are sealed with the keyring; nothing here returns them in plain text."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.db.dependency_models import (
    DependencyBinding,
    DependencyProvisioningPlan,
    DependencyResource,
)
from coordinator.dependencies import kinds
from coordinator.dependencies.realize import Provisioner, secret_binding
from coordinator.ids import new_id
from coordinator.outbound import OutboundGuard, literal_address
from coordinator.secrets import Keyring
from coordinator.settings import Settings
from coordinator.workspace.projects import slugify
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.messages import dependency_names

MANAGED: Final = "appaloft-managed"
IMPORTED: Final = "imported-external"
PROVIDER_DOCKER: Final = "berth-docker"
PROVIDER_EXTERNAL: Final = "external"
_SLUG_SUFFIX: Final = re.compile(r"-\d+$")


@dataclass(frozen=True)
class NewDependency:
    """A provision or import request after parsing."""

    kind: str
    project_id: str
    environment_id: str
    name: str
    server_id: str | None = None
    description: str = ""
    cpus: float | None = None
    memory_bytes: int | None = None
    publish_port: bool = False


def visible(actor: Principal) -> QuerySet[DependencyResource]:
    """Live dependency resources of the caller's organisation within its project scope."""
    rows = DependencyResource.filter(organization_id=actor.organization_id, deleted_at=None)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    return rows


def _filtered(
    actor: Principal, project_id: str | None, environment_id: str | None, kind: str | None
) -> QuerySet[DependencyResource]:
    rows = visible(actor)
    if project_id:
        rows = rows.filter(project_id=project_id)
    if environment_id:
        rows = rows.filter(environment_id=environment_id)
    if kind:
        rows = rows.filter(kind=kind)
    return rows


async def listed(
    actor: Principal,
    *,
    project_id: str | None,
    environment_id: str | None,
    kind: str | None,
    limit: int,
) -> list[DependencyResource]:
    """Visible resources matching the filters, oldest first."""
    return await _filtered(actor, project_id, environment_id, kind).order_by("id").limit(limit)


async def count(
    actor: Principal, *, project_id: str | None, environment_id: str | None, kind: str | None
) -> int:
    """How many visible resources match the filters."""
    return await _filtered(actor, project_id, environment_id, kind).count()


async def get(actor: Principal, dependency_resource_id: str) -> DependencyResource:
    """A resource the caller may see, else 404 (out of scope looks missing)."""
    return await lookup.first_or_404(
        actor, visible(actor), "dependency resource", dependency_resource_id
    )


async def active_bindings(dependency_resource_id: str) -> list[DependencyBinding]:
    """Bindings that block deleting the resource."""
    return await DependencyBinding.filter(
        dependency_resource_id=dependency_resource_id, status="active"
    ).order_by("id")


async def _check_owner(actor: Principal, project_id: str, environment_id: str) -> None:
    environment = await lookup.get_environment(actor, environment_id)
    if environment.project_id != project_id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "environmentId does not belong to projectId",
            details={"projectId": project_id, "environmentId": environment_id},
        )
    if environment.lifecycle_status != "active":
        raise Conflict(
            f"environment is {environment.lifecycle_status}",
            details={"environmentId": environment_id},
        )


async def _server(actor: Principal, server_id: str | None) -> str:
    if server_id is None:
        raise InvalidRequest(
            "serverId is required: Berth runs the database on that server",
            details={"field": "serverId"},
        )
    server = await lookup.get_server(actor, server_id)
    if server.lifecycle_status != "active":
        raise Conflict(f"server is {server.lifecycle_status}", details={"serverId": server_id})
    return server.id


def _slug(name: str) -> str:
    try:
        return slugify(name)[:90]
    except InvalidRequest:
        raise InvalidRequest(
            "name must contain at least one letter or digit",
            details={"problems": [{"field": "name", "message": "no letter or digit"}]},
        ) from None


async def _unique_slug(organization_id: str, environment_id: str, name: str) -> str:
    base = _slug(name)
    taken = {
        str(slug)
        for slug in await DependencyResource.filter(
            organization_id=organization_id, environment_id=environment_id, deleted_at=None
        ).values_list("slug", flat=True)
    }
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _image(settings: Settings, kind: str) -> str:
    return {
        "postgres": settings.dependency_image_postgres,
        "redis": settings.dependency_image_redis,
        "mysql": settings.dependency_image_mysql,
    }[kind]


async def _record(
    actor: Principal,
    request_id: str,
    event: str,
    aggregate_id: str,
    owner: tuple[str, str],
    **payload: object,
) -> None:
    # The owner lets scoped tokens read the event (coordinator/audit_scope.py).
    payload = {"projectId": owner[0], "environmentId": owner[1], **payload}
    await audit.record(
        actor=actor,
        event_type=event,
        aggregate_type="dependency-resource",
        aggregate_id=aggregate_id,
        payload=payload,
        request_id=request_id,
    )


def plan_summary(spec: kinds.KindSpec, image: str, server_id: str | None) -> list[str]:
    """What accepting the plan will do, in plain words."""
    container, volume, network = dependency_names("<id>")
    return [
        f"run {image} as container {container} on server {server_id}",
        f"keep its data in the Docker volume {volume} (mounted at {spec.data_path})",
        f"attach it to the private network {network}; bound resources join it",
        f"listen on port {spec.port} inside that network only (not published on the host)",
        "generate credentials and keep them sealed; answers show them masked",
    ]


async def plan(
    actor: Principal, request_id: str, new: NewDependency, settings: Settings
) -> DependencyProvisioningPlan:
    """Store a ``planned`` provisioning plan; nothing is provisioned until it is accepted."""
    spec = kinds.spec_of(new.kind)
    await _check_owner(actor, new.project_id, new.environment_id)
    server_id = await _server(actor, new.server_id)
    _ = _slug(new.name)
    row = await DependencyProvisioningPlan.create(
        id=new_id("dpp"),
        organization_id=actor.organization_id,
        project_id=new.project_id,
        environment_id=new.environment_id,
        server_id=server_id,
        kind=spec.kind,
        name=new.name,
        summary=plan_summary(spec, _image(settings, spec.kind), server_id),
        requested_at=datetime.now(UTC),
    )
    owner = (new.project_id, new.environment_id)
    await _record(actor, request_id, "dependency-resource.planned", row.id, owner, kind=spec.kind)
    return row


async def get_plan(actor: Principal, plan_id: str) -> DependencyProvisioningPlan:
    """A plan of the caller's organisation and scope, else 404."""
    row = await DependencyProvisioningPlan.get_or_none(
        id=plan_id, organization_id=actor.organization_id
    )
    if row is None or not actor.can_see_environment(row.project_id, row.environment_id):
        raise NotFound(f"provisioning plan {plan_id!r} not found")
    return row


async def accept(
    actor: Principal,
    request_id: str,
    plan_id: str,
    settings: Settings,
    keyring: Keyring,
    provisioner: Provisioner,
) -> DependencyProvisioningPlan:
    """Provision what the plan describes; a plan is accepted once."""
    row = await get_plan(actor, plan_id)
    if row.status != "planned":
        raise Conflict(f"the plan is already {row.status}", details={"planId": row.id})
    new = NewDependency(
        kind=row.kind,
        project_id=row.project_id,
        environment_id=row.environment_id,
        name=row.name,
        server_id=row.server_id,
    )
    _ = await provision(actor, request_id, new, settings, keyring, provisioner, plan_id=row.id)
    return await get_plan(actor, plan_id)


async def provision(
    actor: Principal,
    request_id: str,
    new: NewDependency,
    settings: Settings,
    keyring: Keyring,
    provisioner: Provisioner,
    *,
    plan_id: str | None = None,
) -> str:
    """Store a managed resource (``provisioning``) and have its server's agent run it; with
    ``plan_id``, that plan is accepted in the same transaction (exactly once)."""
    spec = kinds.spec_of(new.kind)
    await _check_owner(actor, new.project_id, new.environment_id)
    server_id = await _server(actor, new.server_id)
    dependency_id = new_id("dbr")
    slug = await _unique_slug(actor.organization_id, new.environment_id, new.name)
    creds = kinds.generate(spec, slug)
    host, _, _ = dependency_names(dependency_id)
    url = kinds.connection_url(spec, host, spec.port, creds)
    now = datetime.now(UTC)
    async with in_transaction():
        _ = await DependencyResource.create(
            id=dependency_id,
            organization_id=actor.organization_id,
            project_id=new.project_id,
            environment_id=new.environment_id,
            server_id=server_id,
            name=new.name,
            slug=slug,
            kind=spec.kind,
            source_mode=MANAGED,
            provider_key=PROVIDER_DOCKER,
            description=new.description,
            lifecycle_status="provisioning",
            image=_image(settings, spec.kind),
            host=host,
            port=spec.port,
            database_name=creds.database_name,
            username=creds.username,
            sealed_connection_url=keyring.encrypt(url, secret_binding(dependency_id, 1)),
            publish_port=new.publish_port,
            cpus=new.cpus,
            memory_bytes=new.memory_bytes,
            realization_status="pending",
            attempt_id=new_id("dpa"),
            created_at=now,
        )
        await _record(
            actor,
            request_id,
            "dependency-resource.provisioned",
            dependency_id,
            (new.project_id, new.environment_id),
            kind=spec.kind,
            serverId=server_id,
            planId=plan_id,
        )
        if plan_id is not None:
            accepted = await DependencyProvisioningPlan.filter(id=plan_id, status="planned").update(
                status="accepted", accepted_at=now, dependency_resource_id=dependency_id
            )
            if not accepted:  # another accept won the race: nothing of this one is kept
                raise Conflict("the plan was accepted meanwhile", details={"planId": plan_id})
    provisioner.start(dependency_id)
    return dependency_id


def check_import_host(guard: OutboundGuard, host: str, port: int) -> None:
    """A private, loopback or link-local literal (or ``localhost``) is refused unless the
    operator allows private targets, as for every other operator-supplied target."""
    address = literal_address(host)
    private = (
        not guard.address_allowed(address, port)
        if address is not None
        else (not guard.allow_private and (host == "localhost" or host.endswith(".localhost")))
    )
    if private:
        raise InvalidRequest(
            "connectionUrl points at a private, loopback or link-local address; the operator "
            "can allow private targets with --allow-private-webhook-targets",
            details={"field": "connectionUrl", "host": host[:100]},
        )


async def import_external(
    actor: Principal,
    request_id: str,
    new: NewDependency,
    connection_url: str,
    keyring: Keyring,
    guard: OutboundGuard,
) -> str:
    """Store an external database's metadata; its URL is kept sealed, shown masked."""
    spec = kinds.spec_of(new.kind)
    parsed = kinds.parse_url(spec, connection_url)
    check_import_host(guard, parsed.host, parsed.port)
    await _check_owner(actor, new.project_id, new.environment_id)
    dependency_id = new_id("dbr")
    slug = await _unique_slug(actor.organization_id, new.environment_id, new.name)
    now = datetime.now(UTC)
    async with in_transaction():
        _ = await DependencyResource.create(
            id=dependency_id,
            organization_id=actor.organization_id,
            project_id=new.project_id,
            environment_id=new.environment_id,
            server_id=None,
            name=new.name,
            slug=slug,
            kind=spec.kind,
            source_mode=IMPORTED,
            provider_key=PROVIDER_EXTERNAL,
            description=new.description,
            lifecycle_status="ready",
            host=parsed.host,
            port=parsed.port,
            database_name=parsed.database_name,
            username=parsed.username,
            sealed_connection_url=keyring.encrypt(connection_url, secret_binding(dependency_id, 1)),
            realization_status="not-applicable",
            realized_at=now,
            created_at=now,
        )
        await _record(
            actor,
            request_id,
            "dependency-resource.imported",
            dependency_id,
            (new.project_id, new.environment_id),
            kind=spec.kind,
        )
    return dependency_id


async def rename(actor: Principal, request_id: str, dependency_resource_id: str, name: str) -> str:
    """Rename (the slug, host and credentials stay)."""
    row = await get(actor, dependency_resource_id)
    _ = _slug(name)
    async with in_transaction():
        old = row.name
        row.name = name
        await row.save(update_fields=["name"])
        await _record(
            actor,
            request_id,
            "dependency-resource.renamed",
            row.id,
            (row.project_id, row.environment_id),
            fromName=old,
            toName=name,
        )
    return row.id


async def delete(
    actor: Principal, request_id: str, dependency_resource_id: str, provisioner: Provisioner
) -> str:
    """Remove the resource (and, when managed, its container, network and volume); a resource
    still bound to any resource is refused with 409 naming the bindings."""
    row = await get(actor, dependency_resource_id)
    bound = await active_bindings(row.id)
    if bound:
        raise Conflict(
            f"dependency resource is bound to {len(bound)} resource(s); remove the bindings first",
            details={
                "blockers": [
                    {
                        "kind": "resource-binding",
                        "relatedEntityId": b.resource_id,
                        "relatedEntityType": "resource",
                        "bindingId": b.id,
                    }
                    for b in bound
                ]
            },
        )
    if row.source_mode == MANAGED:
        await provisioner.remove(row)
    async with in_transaction():
        await DependencyResource.filter(id=row.id).update(
            deleted_at=datetime.now(UTC), lifecycle_status="deleted"
        )
        await _record(
            actor,
            request_id,
            "dependency-resource.deleted",
            row.id,
            (row.project_id, row.environment_id),
            kind=row.kind,
        )
    return row.id
