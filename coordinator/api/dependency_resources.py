"""Dependency-resource routes: parse, authorize, call ``coordinator.dependencies``, shape."""

from datetime import UTC, datetime
from typing import Final

from coordinator.api.dependency_schemas import (
    AcceptDependencyPlanRequest,
    CountDependencyResourcesQuery,
    DependencyBackupRelationship,
    DependencyConnection,
    DependencyDeleteBlocker,
    DependencyDeleteSafety,
    DependencyPlanRequest,
    DependencyProviderRealization,
    DependencyProvisioningPlanItem,
    DependencyProvisioningPlanResponse,
    DependencyReadiness,
    DependencyResourceItem,
    DependencyResourceList,
    DependencyResourceShow,
    ImportDependencyRequest,
    ListDependencyResourcesQuery,
    ProvisionDependencyRequest,
    RenameDependencyRequest,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import CountResponse, IdResponse, NoQuery
from coordinator.appkeys import SETTINGS_KEY
from coordinator.backups import service as backups
from coordinator.db.dependency_models import DependencyProvisioningPlan, DependencyResource
from coordinator.dependencies import PROVISIONER_KEY, kinds, service
from coordinator.dependencies.realize import Provisioner, reveal_url
from coordinator.outbound import guard_for
from coordinator.settings import Settings
from shared.errors import InvalidRequest

TAG: Final = "dependency-resources"
READ: Final = "dependency-resources:read"
WRITE: Final = "dependency-resources:write"


def secret_ref(row: DependencyResource) -> str:
    """The name of the sealed connection secret (never the secret)."""
    return f"dependency-resource/{row.id}/connection/v{row.secret_version}"


def connection_of(call: Call, row: DependencyResource) -> DependencyConnection:
    """Safe connection parts of a resource."""
    return DependencyConnection(
        host=row.host,
        port=row.port,
        database_name=row.database_name,
        masked_connection=kinds.masked(reveal_url(call.keyring, row)),
        secret_ref=secret_ref(row),
    )


def readiness_of(row: DependencyResource) -> DependencyReadiness:
    """Whether a binding can be created now."""
    if row.lifecycle_status == "ready":
        return DependencyReadiness(status="ready", reason=None)
    return DependencyReadiness(
        status="blocked", reason=f"the dependency resource is {row.lifecycle_status}"
    )


def backup_relationship_of(kept: int) -> DependencyBackupRelationship:
    """Whether backups of the resource are kept (they outlive it: see docs/backups.md)."""
    if not kept:
        return DependencyBackupRelationship(
            retention_required=False, reason="no backups are kept for this resource"
        )
    return DependencyBackupRelationship(
        retention_required=True,
        reason=f"{kept} ready backup(s) are kept; they stay restorable after a delete",
    )


async def item_of(call: Call, row: DependencyResource) -> DependencyResourceItem:
    """The API item of a stored resource."""
    bound = await service.active_bindings(row.id)
    return DependencyResourceItem(
        id=row.id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        server_id=row.server_id,
        name=row.name,
        slug=row.slug,
        kind=row.kind,  # type: ignore[arg-type]
        source_mode=row.source_mode,  # type: ignore[arg-type]
        provider_key=row.provider_key,
        provider_managed=row.source_mode == service.MANAGED,
        description=row.description,
        lifecycle_status=row.lifecycle_status,  # type: ignore[arg-type]
        image=row.image,
        connection=connection_of(call, row),
        provider_realization=DependencyProviderRealization(
            status=row.realization_status,  # type: ignore[arg-type]
            attempt_id=row.attempt_id,
            attempted_at=row.attempted_at,
            provider_resource_handle=row.container_id,
            realized_at=row.realized_at,
            failed_at=row.failed_at,
            failure_code=row.failure_code,
            failure_message=row.failure_message,
        ),
        desired_capabilities=[],
        capability_readbacks=[],
        binding_readiness=readiness_of(row),
        backup_relationship=backup_relationship_of(await backups.kept_count(row.id)),
        delete_safety=DependencyDeleteSafety(
            blockers=[
                DependencyDeleteBlocker(
                    kind="resource-binding",
                    related_entity_id=b.resource_id,
                    related_entity_type="resource",
                    count=1,
                )
                for b in bound
            ]
        ),
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )


def _plan_answer(row: DependencyProvisioningPlan) -> DependencyProvisioningPlanResponse:
    spec = kinds.spec_of(row.kind)
    return DependencyProvisioningPlanResponse(
        plan=DependencyProvisioningPlanItem(
            id=row.id,
            mode="create",
            status=row.status,  # type: ignore[arg-type]
            kind=row.kind,  # type: ignore[arg-type]
            project_id=row.project_id,
            environment_id=row.environment_id,
            name=row.name,
            provider_key=service.PROVIDER_DOCKER,
            server_id=row.server_id,
            endpoint=f"{spec.kind}://<private network>:{spec.port}",
            capabilities=[],
            requires_acceptance=True,
            requested_at=row.requested_at,
            accepted_at=row.accepted_at,
            completed_at=row.completed_at,
            dependency_resource_id=row.dependency_resource_id,
            failure_code=row.failure_code,
            failure_message=row.failure_message,
            summary=list(row.summary),
        ),
        generated_at=datetime.now(UTC),
    )


def _settings(call: Call) -> Settings:
    return call.request.app[SETTINGS_KEY]


def _provisioner(call: Call) -> Provisioner:
    return call.request.app[PROVISIONER_KEY]


@route(
    "POST",
    "/dependency-resources/provisioning/plan",
    summary="Plan provisioning a database (nothing runs until the plan is accepted)",
    tag=TAG,
    permission=WRITE,
    body=DependencyPlanRequest,
    response=DependencyProvisioningPlanResponse,
    status=201,
)
async def plan(call: Call) -> DependencyProvisioningPlanResponse:
    """Store a ``planned`` plan saying what accepting it will create."""
    body = call.body(DependencyPlanRequest).create
    new = service.NewDependency(
        kind=body.kind,
        project_id=body.project_id,
        environment_id=body.environment_id,
        name=body.name,
        server_id=body.server_id,
    )
    row = await service.plan(call.actor, call.request_id, new, _settings(call))
    return _plan_answer(row)


@route(
    "POST",
    "/dependency-resources/provisioning/{planId}/accept",
    summary="Accept a provisioning plan: provision what it describes",
    tag=TAG,
    permission=WRITE,
    body=AcceptDependencyPlanRequest,
    response=DependencyProvisioningPlanResponse,
)
async def accept(call: Call) -> DependencyProvisioningPlanResponse:
    """``acknowledgeMutation`` must be true; a plan is accepted once (409 after)."""
    if not call.body(AcceptDependencyPlanRequest).acknowledge_mutation:
        raise InvalidRequest(
            "acknowledgeMutation must be true to provision",
            details={"field": "acknowledgeMutation"},
        )
    row = await service.accept(
        call.actor,
        call.request_id,
        call.path["planId"],
        _settings(call),
        call.keyring,
        _provisioner(call),
    )
    return _plan_answer(row)


@route(
    "GET",
    "/dependency-resources/provisioning/{planId}",
    summary="Show a provisioning plan and its outcome",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DependencyProvisioningPlanResponse,
)
async def show_plan(call: Call) -> DependencyProvisioningPlanResponse:
    """One plan of the caller's scope."""
    return _plan_answer(await service.get_plan(call.actor, call.path["planId"]))


@route(
    "GET",
    "/dependency-resources/count",
    summary="Count dependency resources",
    tag=TAG,
    permission=READ,
    query=CountDependencyResourcesQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """How many visible resources match the filters."""
    query = call.query(CountDependencyResourcesQuery)
    found = await service.count(
        call.actor,
        project_id=query.project_id,
        environment_id=query.environment_id,
        kind=query.kind,
    )
    return CountResponse(count=found)


@route(
    "POST",
    "/dependency-resources/provision",
    summary="Provision a database on a server (PostgreSQL, Redis, MySQL/MariaDB)",
    tag=TAG,
    permission=WRITE,
    body=ProvisionDependencyRequest,
    response=IdResponse,
    status=201,
)
async def provision(call: Call) -> IdResponse:
    """Stored as ``provisioning``; the server's agent runs it and it becomes ``ready``."""
    body = call.body(ProvisionDependencyRequest)
    new = service.NewDependency(**body.model_dump(by_alias=False))
    dependency_id = await service.provision(
        call.actor, call.request_id, new, _settings(call), call.keyring, _provisioner(call)
    )
    return IdResponse(id=dependency_id)


@route(
    "POST",
    "/dependency-resources/import",
    summary="Import an external database by its connection URL (kept sealed, shown masked)",
    tag=TAG,
    permission=WRITE,
    body=ImportDependencyRequest,
    response=IdResponse,
    status=201,
)
async def import_external(call: Call) -> IdResponse:
    """Validate the URL for its kind; private targets need the operator's permission."""
    body = call.body(ImportDependencyRequest)
    new = service.NewDependency(
        kind=body.kind,
        project_id=body.project_id,
        environment_id=body.environment_id,
        name=body.name,
        description=body.description,
    )
    dependency_id = await service.import_external(
        call.actor,
        call.request_id,
        new,
        body.connection_url,
        call.keyring,
        guard_for(call.request.app),
    )
    return IdResponse(id=dependency_id)


@route(
    "GET",
    "/dependency-resources",
    summary="List dependency resources (connections masked)",
    tag=TAG,
    permission=READ,
    query=ListDependencyResourcesQuery,
    response=DependencyResourceList,
)
async def list_resources(call: Call) -> DependencyResourceList:
    """Visible resources, oldest first."""
    query = call.query(ListDependencyResourcesQuery)
    rows = await service.listed(
        call.actor,
        project_id=query.project_id,
        environment_id=query.environment_id,
        kind=query.kind,
        limit=query.limit,
    )
    return DependencyResourceList(
        items=[await item_of(call, r) for r in rows], generated_at=datetime.now(UTC)
    )


@route(
    "GET",
    "/dependency-resources/{dependencyResourceId}",
    summary="Show a dependency resource with its realization and delete safety",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DependencyResourceShow,
)
async def show(call: Call) -> DependencyResourceShow:
    """One resource of the caller's scope."""
    row = await service.get(call.actor, call.path["dependencyResourceId"])
    return DependencyResourceShow(
        dependency_resource=await item_of(call, row), generated_at=datetime.now(UTC)
    )


@route(
    "POST",
    "/dependency-resources/{dependencyResourceId}/rename",
    summary="Rename a dependency resource",
    tag=TAG,
    permission=WRITE,
    body=RenameDependencyRequest,
    response=IdResponse,
)
async def rename(call: Call) -> IdResponse:
    """The slug, host and credentials stay."""
    name = call.body(RenameDependencyRequest).name
    return IdResponse(
        id=await service.rename(
            call.actor, call.request_id, call.path["dependencyResourceId"], name
        )
    )


@route(
    "DELETE",
    "/dependency-resources/{dependencyResourceId}",
    summary="Delete a dependency resource (409 while bound); a managed one's data is removed",
    tag=TAG,
    permission=WRITE,
    response=IdResponse,
    errors=AGENT_ERRORS,
)
async def delete(call: Call) -> IdResponse:
    """Refused while any resource is bound to it."""
    return IdResponse(
        id=await service.delete(
            call.actor, call.request_id, call.path["dependencyResourceId"], _provisioner(call)
        )
    )
