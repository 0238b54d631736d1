"""Resource routes: lifecycle (create, list, show, archive, delete), profiles and source."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from coordinator import resource_config
from coordinator.api.health_schemas import (
    LatestRuntimeControl,
    latest_runtime_control,
    latest_runtime_controls,
)
from coordinator.api.resource_diagnostics import variable_drift
from coordinator.api.resource_schemas import (
    ArchiveResourceRequest,
    ConfigureAccessProfileRequest,
    ConfigureHealthPolicyRequest,
    ConfigureNetworkProfileRequest,
    ConfigureRuntimeProfileRequest,
    ConfigureSourceRequest,
    CountResourcesQuery,
    CreateResourceRequest,
    DeleteResourceRequest,
    LatestDeployment,
    ListResourcesQuery,
    LocalFolderSource,
    ResetHealthPolicyRequest,
    ResourceItem,
    ResourceLifecycle,
    ResourceList,
    ResourceService,
    ResourceShowResponse,
    ResourceStorageAttachment,
)
from coordinator.api.resource_views import (
    DomainAccessRoute,
    PlannedAccessRoute,
    ResourceHealthPolicy,
    access_summary,
    access_view,
    applied_route,
    domain_route,
    network_view,
    planned_route,
    runtime_view,
    source_view,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import CountResponse, IdResponse, NoQuery
from coordinator.appkeys import KEYRING_KEY, SETTINGS_KEY
from coordinator.db import models
from coordinator.domains.durable_routes import latest_bound
from coordinator.edge import access_failures
from coordinator.edge.access_failures import ResourceAccessFailure
from coordinator.lookup import get_resource
from coordinator.volumes import store as volume_store
from coordinator.workspace import resources
from coordinator.workspace.resources import Profile

TAG = "resources"


def _status(row: models.Resource) -> str:
    return "archived" if row.lifecycle_status == "archived" else "active"


async def _planned_routes(call: Call, rows: list[models.Resource]) -> dict[str, PlannedAccessRoute]:
    """The route each resource's next deployment would get."""
    edge = call.request.app[SETTINGS_KEY].edge_domain
    found: dict[str, PlannedAccessRoute] = {}
    placements = await resources.placements(rows)
    for row in rows:
        at = placements.get(row.id)
        route = planned_route(row, at.project, at.environment, edge) if at else None
        if route is not None:
            found[row.id] = route
    return found


def _durable(row: models.Resource, bound: models.DomainBinding | None) -> DomainAccessRoute | None:
    port = resource_config.network_profile(row).get("internalPort")
    return domain_route(bound, port) if bound is not None else None


def _applied(
    row: models.Resource, bound: models.DomainBinding | None, deployments: list[models.Deployment]
) -> DomainAccessRoute | None:
    port = resource_config.network_profile(row).get("internalPort")
    return applied_route(bound, deployments, port)


def resource_item(
    row: models.Resource,
    deployments: list[models.Deployment],
    control: LatestRuntimeControl | None = None,
    planned: PlannedAccessRoute | None = None,
    bound: models.DomainBinding | None = None,
    failure: ResourceAccessFailure | None = None,
) -> ResourceItem:
    """Convert a resource row (its deployments newest first, its last runtime control)."""
    latest = deployments[0] if deployments else None
    return ResourceItem(
        id=row.id,
        project_id=row.project_id,  # type: ignore[attr-defined]
        environment_id=row.environment_id,  # type: ignore[attr-defined]
        destination_id=None,
        name=row.name,
        slug=row.slug,
        kind=row.kind,
        description=row.description,
        lifecycle_status="archived" if _status(row) == "archived" else "active",
        created_at=row.created_at,
        services=[ResourceService(name=row.slug, kind="web")],
        network_profile=network_view(resource_config.network_profile(row)),
        access_profile=access_view(resource_config.access_profile(row)),
        deployment_count=len(deployments),
        last_deployment_id=latest.id if latest else None,
        last_deployment_status=latest.status if latest else None,
        access_summary=access_summary(
            deployments, planned, _durable(row, bound), failure, _applied(row, bound, deployments)
        ),
        latest_runtime_control=control,
    )


# ---- lifecycle -------------------------------------------------------------------------------


@route(
    "POST",
    "/resources",
    summary="Create a resource in an environment",
    tag=TAG,
    permission="resources:write",
    body=CreateResourceRequest,
    response=IdResponse,
    status=201,
)
async def create(call: Call) -> IdResponse:
    """Create an active resource; its slug comes from the name and is unique per environment."""
    body = call.body(CreateResourceRequest)
    resource_id = await resources.create(
        call.actor,
        body.project_id,
        body.environment_id,
        body.name,
        body.kind,
        body.description,
        call.request_id,
    )
    return IdResponse(id=resource_id)


@route(
    "GET",
    "/resources",
    summary="List resources",
    tag=TAG,
    permission="resources:read",
    query=ListResourcesQuery,
    response=ResourceList,
)
async def list_resources(call: Call) -> ResourceList:
    """List the resources the caller may see, oldest first, with cursor pagination."""
    query = call.query(ListResourcesQuery)
    found = await resources.page(
        call.actor, query.project_id, query.environment_id, query.cursor, query.limit
    )
    page = found.items
    deployments = await resources.deployments_of(r.id for r in page)
    controls = await latest_runtime_controls([r.id for r in page])
    planned = await _planned_routes(call, page)
    bound = await latest_bound([r.id for r in page])
    failures = await access_failures.latest_by_resource([r.id for r in page])
    return ResourceList(
        items=[
            resource_item(
                r,
                deployments[r.id],
                controls.get(r.id),
                planned.get(r.id),
                bound.get(r.id),
                failures.get(r.id),
            )
            for r in page
        ],
        next_cursor=found.next_cursor,
    )


@route(
    "GET",
    "/resources/count",
    summary="Count resources",
    tag=TAG,
    permission="resources:read",
    query=CountResourcesQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """Count the resources the caller may see (optionally in one project or environment)."""
    query = call.query(CountResourcesQuery)
    return CountResponse(
        count=await resources.count(call.actor, query.project_id, query.environment_id)
    )


@route(
    "GET",
    "/resources/{resourceId}",
    summary="Show a resource with its profiles and latest deployment",
    tag=TAG,
    permission="resources:read",
    query=NoQuery,
    response=ResourceShowResponse,
)
async def show(call: Call) -> ResourceShowResponse:
    """``resources.show/v1``; profiles have their defaults filled in."""
    row = await get_resource(call.actor, call.path["resourceId"])
    deployments = (await resources.deployments_of([row.id]))[row.id]
    latest = deployments[0] if deployments else None
    planned = (await _planned_routes(call, [row])).get(row.id)
    bound = (await latest_bound([row.id])).get(row.id)
    control = await latest_runtime_control(row.id)
    failure = (await access_failures.latest_by_resource([row.id])).get(row.id)
    return ResourceShowResponse(
        resource=resource_item(row, deployments, control, planned, bound, failure),
        source=source_view(row.source),
        runtime_profile=runtime_view(
            resource_config.runtime_profile(row), resource_config.health_policy(row)
        ),
        network_profile=network_view(resource_config.network_profile(row)),
        access_profile=access_view(resource_config.access_profile(row)),
        health_policy=ResourceHealthPolicy.model_validate(resource_config.health_policy(row)),
        lifecycle=ResourceLifecycle(
            status="archived" if _status(row) == "archived" else "active",
            archived_at=row.archived_at,
            deleted_at=None,
        ),
        latest_deployment=LatestDeployment(
            id=latest.id,
            status=latest.status,
            created_at=latest.created_at,
            started_at=latest.started_at,
            finished_at=latest.finished_at,
            server_id=latest.server_id,
            destination_id=None,
        )
        if latest
        else None,
        access_summary=access_summary(
            deployments, planned, _durable(row, bound), failure, _applied(row, bound, deployments)
        ),
        diagnostics=await variable_drift(call.request.app[KEYRING_KEY], row, latest),
        storage_attachments=[
            ResourceStorageAttachment(
                id=attachment.id,
                storage_volume_id=volume.id,
                storage_volume_name=volume.name,
                storage_volume_kind=volume.kind,  # type: ignore[arg-type]
                destination_path=attachment.destination_path,
                mount_mode=attachment.mount_mode,  # type: ignore[arg-type]
                attached_at=attachment.attached_at,
            )
            for attachment, volume in await volume_store.resource_mounts(row.id)
        ],
        generated_at=datetime.now(UTC),
    )


@route(
    "POST",
    "/resources/{resourceId}/archive",
    summary="Archive a resource: readable, no configuration changes or deployments",
    tag=TAG,
    permission="resources:write",
    body=ArchiveResourceRequest,
    response=IdResponse,
)
async def archive(call: Call) -> IdResponse:
    """Archive an active resource (archiving twice is a conflict)."""
    body = call.body(ArchiveResourceRequest)
    resource_id = await resources.archive(
        call.actor, call.path["resourceId"], body.reason, call.request_id
    )
    return IdResponse(id=resource_id)


@route(
    "DELETE",
    "/resources/{resourceId}",
    summary="Delete a resource with its variables and source archives",
    tag=TAG,
    permission="resources:write",
    body=DeleteResourceRequest,
    response=IdResponse,
)
async def delete(call: Call) -> IdResponse:
    """Delete after slug confirmation; refused while one of its deployments is in flight."""
    body = call.body(DeleteResourceRequest)
    resource_id = await resources.delete(
        call.actor,
        call.path["resourceId"],
        body.confirmation.resource_slug,
        call.request.app[SETTINGS_KEY].data_dir,
        call.request_id,
    )
    return IdResponse(id=resource_id)


# ---- profiles and source ---------------------------------------------------------------------


def _stored(model: BaseModel) -> dict[str, Any]:
    """The JSON a profile column holds: camelCase, exactly as the API model dumps it."""
    return model.model_dump(mode="json", by_alias=True)


async def _configure(
    call: Call, column: Profile, value: dict[str, Any] | None, event: str
) -> IdResponse:
    resource_id = await resources.update_profile(
        call.actor, call.path["resourceId"], column, value, event, call.request_id
    )
    return IdResponse(id=resource_id)


@route(
    "POST",
    "/resources/{resourceId}/runtime-profile",
    summary="Configure how the resource runs (replaces the runtime profile)",
    tag=TAG,
    permission="resources:write",
    body=ConfigureRuntimeProfileRequest,
    response=IdResponse,
)
async def configure_runtime_profile(call: Call) -> IdResponse:
    """Store the runtime profile; omitted fields take their defaults."""
    profile = call.body(ConfigureRuntimeProfileRequest).runtime_profile
    return await _configure(call, "runtime_profile", _stored(profile), "runtime-profile-configured")


@route(
    "POST",
    "/resources/{resourceId}/network-profile",
    summary="Configure the container port and its exposure",
    tag=TAG,
    permission="resources:write",
    body=ConfigureNetworkProfileRequest,
    response=IdResponse,
)
async def configure_network_profile(call: Call) -> IdResponse:
    """Store the network profile; ``internalPort`` is required (1-65535)."""
    profile = call.body(ConfigureNetworkProfileRequest).network_profile
    return await _configure(call, "network_profile", _stored(profile), "network-profile-configured")


@route(
    "POST",
    "/resources/{resourceId}/access-profile",
    summary="Configure generated access routes",
    tag=TAG,
    permission="resources:write",
    body=ConfigureAccessProfileRequest,
    response=IdResponse,
)
async def configure_access_profile(call: Call) -> IdResponse:
    """Store the access profile."""
    profile = call.body(ConfigureAccessProfileRequest).access_profile
    return await _configure(call, "access_profile", _stored(profile), "access-profile-configured")


@route(
    "POST",
    "/resources/{resourceId}/health-policy",
    summary="Configure the health check a candidate must pass",
    tag=TAG,
    permission="resources:write",
    body=ConfigureHealthPolicyRequest,
    response=IdResponse,
)
async def configure_health_policy(call: Call) -> IdResponse:
    """Store the health policy (body ``healthCheck``); omitted fields take their defaults."""
    policy = call.body(ConfigureHealthPolicyRequest).health_check
    return await _configure(call, "health_policy", _stored(policy), "health-policy-configured")


@route(
    "POST",
    "/resources/{resourceId}/health-policy/reset",
    summary="Reset the health policy to its defaults",
    tag=TAG,
    permission="resources:write",
    body=ResetHealthPolicyRequest,
    response=IdResponse,
)
async def reset_health_policy(call: Call) -> IdResponse:
    """Clear the stored policy so the defaults apply again."""
    return await _configure(call, "health_policy", None, "health-policy-reset")


@route(
    "POST",
    "/resources/{resourceId}/source",
    summary="Configure the resource's source (docker image or uploaded folder)",
    tag=TAG,
    permission="resources:write",
    body=ConfigureSourceRequest,
    response=IdResponse,
)
async def configure_source(call: Call) -> IdResponse:
    """Store the source; a local folder may only point at an archive of this resource.

    The command replaces the source, so repeating it (same ``idempotencyKey``) changes nothing.
    """
    body = call.body(ConfigureSourceRequest)
    source = body.source
    archive_id = source.metadata.get("archiveId") if isinstance(source, LocalFolderSource) else None
    resource_id = await resources.configure_source(
        call.actor,
        call.path["resourceId"],
        source.model_dump(mode="json", by_alias=True, exclude_none=True),
        archive_id,
        body.idempotency_key,
        call.request_id,
    )
    return IdResponse(id=resource_id)
