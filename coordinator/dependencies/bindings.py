"""Dependency bindings: a resource's deployments get a dependency resource's connection URL as
an environment variable (``targetName``) and join its private network."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.db.dependency_models import DependencyBinding, DependencyResource
from coordinator.dependencies import kinds, service
from coordinator.dependencies.realize import Provisioner, reveal_url, secret_binding
from coordinator.ids import new_id
from coordinator.secrets import Keyring
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.messages import dependency_names

# An environment variable name a shell and Docker accept.
TARGET_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
BINDING_SCOPE: Final = "dependency-binding"


@dataclass(frozen=True)
class BoundEntry:
    """One binding as a deployment sees it: the variable and the network to join."""

    binding_id: str
    target_name: str
    url: str
    network: str | None
    dependency_resource_id: str
    server_id: str | None
    kind: str

    def reference(self) -> dict[str, str]:
        """What a deployment's snapshot records of the binding (never the URL)."""
        return {
            "bindingId": self.binding_id,
            "dependencyResourceId": self.dependency_resource_id,
            "kind": self.kind,
            "targetName": self.target_name,
        }


async def listed(actor: Principal, resource_id: str) -> list[DependencyBinding]:
    """The resource's active bindings (404 when the resource is not visible)."""
    resource = await lookup.get_resource(actor, resource_id)
    return await DependencyBinding.filter(resource_id=resource.id, status="active").order_by("id")


async def get(actor: Principal, resource_id: str, binding_id: str) -> DependencyBinding:
    """One active binding of a visible resource, else 404."""
    resource = await lookup.get_resource(actor, resource_id)
    row = await DependencyBinding.get_or_none(
        id=binding_id, resource_id=resource.id, status="active"
    )
    if row is None:
        raise NotFound(f"dependency binding {binding_id!r} not found")
    return row


async def create(
    actor: Principal, request_id: str, resource_id: str, dependency_id: str, target_name: str
) -> str:
    """Bind a ready dependency resource of the same environment under ``target_name``."""
    if not TARGET_NAME.fullmatch(target_name):
        raise InvalidRequest(
            "targetName must be an environment variable name (letters, digits, _)",
            details={"field": "targetName"},
        )
    resource = await lookup.get_resource(actor, resource_id)
    dependency = await service.get(actor, dependency_id)
    if dependency.environment_id != resource.environment_id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "the dependency resource belongs to another environment",
            details={"dependencyResourceId": dependency.id},
        )
    if dependency.lifecycle_status != "ready":
        raise Conflict(
            f"the dependency resource is {dependency.lifecycle_status}, not ready",
            details={"dependencyResourceId": dependency.id},
        )
    binding_id = new_id("dpb")
    async with in_transaction():
        clash = await DependencyBinding.filter(
            resource_id=resource.id, target_name=target_name, status="active"
        ).first()
        if clash is not None:
            raise Conflict(
                f"{target_name} is already bound on this resource",
                details={"bindingId": clash.id},
            )
        _ = await DependencyBinding.create(
            id=binding_id,
            organization_id=actor.organization_id,
            project_id=dependency.project_id,
            environment_id=dependency.environment_id,
            resource_id=resource.id,
            dependency_resource_id=dependency.id,
            target_name=target_name,
            secret_version=dependency.secret_version,
            created_at=datetime.now(UTC),
        )
        await audit.record(
            actor=actor,
            event_type="dependency-binding.created",
            aggregate_type="resource",
            aggregate_id=resource.id,
            payload={
                "bindingId": binding_id,
                "dependencyResourceId": dependency.id,
                "targetName": target_name,
            },
            request_id=request_id,
        )
    return binding_id


async def delete(actor: Principal, request_id: str, resource_id: str, binding_id: str) -> str:
    """Unbind (the next deployment no longer gets the variable; the database is untouched)."""
    row = await get(actor, resource_id, binding_id)
    async with in_transaction():
        await DependencyBinding.filter(id=row.id).update(
            status="removed", removed_at=datetime.now(UTC)
        )
        await audit.record(
            actor=actor,
            event_type="dependency-binding.removed",
            aggregate_type="resource",
            aggregate_id=row.resource_id,
            payload={"bindingId": row.id, "dependencyResourceId": row.dependency_resource_id},
            request_id=request_id,
        )
    return row.id


async def dependency_of(row: DependencyBinding) -> DependencyResource:
    """The binding's dependency resource (kept as a row after a delete, so always there)."""
    return await DependencyResource.get(id=row.dependency_resource_id)


@dataclass(frozen=True)
class Rotated:
    """A rotation's answer."""

    binding_id: str
    rotated_at: datetime
    secret_version: int
    # Every resource bound to the database (their running containers still hold the old URL).
    bound_resource_ids: tuple[str, ...]


async def rotate(
    actor: Principal,
    request_id: str,
    resource_id: str,
    binding_id: str,
    keyring: Keyring,
    provisioner: Provisioner,
) -> Rotated:
    """A new password for the binding's database: set in the database by its agent, then
    sealed as the next secret version for every binding of it. Deployments made before keep
    their snapshot (with the old URL); the next deployment gets the new one."""
    row = await get(actor, resource_id, binding_id)
    dependency = await dependency_of(row)
    if dependency.source_mode != service.MANAGED:
        raise Conflict(
            "an imported database's credentials change at its provider; import it again",
            details={"dependencyResourceId": dependency.id},
        )
    if dependency.lifecycle_status != "ready":
        raise Conflict(
            f"the dependency resource is {dependency.lifecycle_status}, not ready",
            details={"dependencyResourceId": dependency.id},
        )
    spec = kinds.spec_of(dependency.kind)
    creds = kinds.Credentials(dependency.username, kinds.new_password(), dependency.database_name)
    await provisioner.rotate(dependency, creds)
    version = dependency.secret_version + 1
    url = kinds.connection_url(spec, dependency.host, dependency.port, creds)
    now = datetime.now(UTC)
    async with in_transaction():
        await DependencyResource.filter(id=dependency.id).update(
            sealed_connection_url=keyring.encrypt(url, secret_binding(dependency.id, version)),
            secret_version=version,
        )
        await DependencyBinding.filter(
            dependency_resource_id=dependency.id, status="active"
        ).update(
            previous_secret_version=dependency.secret_version,
            secret_version=version,
            rotated_at=now,
        )
        await audit.record(
            actor=actor,
            event_type="dependency-binding.secret-rotated",
            aggregate_type="resource",
            aggregate_id=row.resource_id,
            payload={
                "bindingId": row.id,
                "dependencyResourceId": dependency.id,
                "secretVersion": version,
            },
            request_id=request_id,
        )
    bound = await DependencyBinding.filter(
        dependency_resource_id=dependency.id, status="active"
    ).values_list("resource_id", flat=True)
    return Rotated(row.id, now, version, tuple(sorted({str(rid) for rid in bound})))


async def bound_entries(keyring: Keyring, resource_id: str) -> list[BoundEntry]:
    """What the next deployment of ``resource_id`` injects: plaintext URLs (seal them)."""
    rows = await DependencyBinding.filter(resource_id=resource_id, status="active").order_by("id")
    entries: list[BoundEntry] = []
    for row in rows:
        dependency = await DependencyResource.get_or_none(
            id=row.dependency_resource_id, deleted_at=None
        )
        if dependency is None:
            continue
        managed = dependency.source_mode == service.MANAGED
        network = dependency_names(dependency.id)[2] if managed else None
        entries.append(
            BoundEntry(
                row.id,
                row.target_name,
                reveal_url(keyring, dependency),
                network,
                dependency.id,
                dependency.server_id if managed else None,
                dependency.kind,
            )
        )
    return entries
