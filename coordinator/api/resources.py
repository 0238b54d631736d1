"""Resource routes: lifecycle (create, list, show, archive, delete), profiles and source."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import archives, audit, resource_config
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
)
from coordinator.api.resource_views import (
    DomainAccessRoute,
    PlannedAccessRoute,
    ResourceHealthPolicy,
    access_summary,
    access_view,
    domain_route,
    network_view,
    planned_route,
    runtime_view,
    source_view,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import CountResponse, IdResponse, NoQuery
from coordinator.appkeys import KEYRING_KEY, SETTINGS_KEY
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.domains.durable_routes import latest_bound
from coordinator.ids import new_id
from coordinator.lookup import get_environment, get_project, get_resource
from coordinator.workspace.mutability import current_resource, require_mutable
from coordinator.workspace.projects import require_active_project, slugify
from shared.errors import Conflict, Forbidden, InvalidRequest

TAG = "resources"
SCOPE: Final = "resource"
# A deployment in one of these states still owns the resource's runtime: no delete meanwhile.
ACTIVE_DEPLOYMENT_STATUSES: Final = (
    "created",
    "planning",
    "planned",
    "running",
    "cancel-requested",
)


def problem(field: str, message: str) -> dict[str, Any]:
    """``details`` of an ``InvalidRequest`` naming one field."""
    return {"problems": [{"field": field, "message": message}]}


def _slug(name: str) -> str:
    if not any(c.isalnum() for c in name):
        raise InvalidRequest(
            "resource name must contain at least one letter or digit",
            details=problem("name", "no letter or digit"),
        )
    return slugify(name)


def _status(row: models.Resource) -> str:
    return "archived" if row.lifecycle_status == "archived" else "active"


async def record(call: Call, event: str, resource_id: str, **payload: object) -> None:
    """Append a ``resource.<event>`` audit event (call inside the mutation's transaction)."""
    await audit.record(
        actor=call.actor,
        event_type=f"resource.{event}",
        aggregate_type="resource",
        aggregate_id=resource_id,
        payload=payload,
        request_id=call.request_id,
    )


def _visible(actor: Principal) -> QuerySet[models.Resource]:
    rows = models.Resource.filter(project__organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.resource_ids:
        rows = rows.filter(id__in=list(actor.resource_ids))
    return rows


async def _deployments(resource_ids: Iterable[str]) -> dict[str, list[models.Deployment]]:
    """Deployments per resource, newest first."""
    found: dict[str, list[models.Deployment]] = {rid: [] for rid in resource_ids}
    if found:
        for row in await models.Deployment.filter(resource_id__in=list(found)).order_by(
            "-created_at", "-id"
        ):
            found[row.resource_id].append(row)
    return found


async def _planned_routes(call: Call, rows: list[models.Resource]) -> dict[str, PlannedAccessRoute]:
    """The route each resource's next deployment would get (two queries for a page)."""
    projects = {
        p.id: p
        for p in await models.Project.filter(id__in=[r.project_id for r in rows])  # type: ignore[attr-defined]
    }
    environments = {
        e.id: e
        for e in await models.Environment.filter(id__in=[r.environment_id for r in rows])  # type: ignore[attr-defined]
    }
    edge = call.request.app[SETTINGS_KEY].edge_domain
    found: dict[str, PlannedAccessRoute] = {}
    for r in rows:
        project = projects.get(r.project_id)  # type: ignore[attr-defined]
        environment = environments.get(r.environment_id)  # type: ignore[attr-defined]
        if project is not None and environment is not None:
            route = planned_route(r, project, environment, edge)
            if route is not None:
                found[r.id] = route
    return found


def _durable(row: models.Resource, bound: models.DomainBinding | None) -> DomainAccessRoute | None:
    port = resource_config.network_profile(row).get("internalPort")
    return domain_route(bound, port) if bound is not None else None


def resource_item(
    row: models.Resource,
    deployments: list[models.Deployment],
    control: LatestRuntimeControl | None = None,
    planned: PlannedAccessRoute | None = None,
    bound: models.DomainBinding | None = None,
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
        access_summary=access_summary(deployments, planned, _durable(row, bound)),
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
    actor = call.actor
    if actor.resource_ids:
        raise Forbidden("a resource-scoped token cannot create resources")
    project = await get_project(actor, body.project_id)
    environment = await get_environment(actor, body.environment_id)
    if environment.project_id != project.id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "the environment does not belong to the project",
            details=problem("environmentId", f"not an environment of project {project.id}"),
        )
    slug = _slug(body.name)
    resource_id = new_id("res")
    try:
        async with in_transaction():
            current = await models.Project.filter(id=project.id).select_for_update().get()
            require_active_project(current)
            require_mutable(
                await models.Environment.filter(id=environment.id).select_for_update().get()
            )
            _ = await models.Resource.create(
                id=resource_id,
                project_id=project.id,
                environment_id=environment.id,
                name=body.name,
                slug=slug,
                kind=body.kind,
                description=body.description,
                created_at=datetime.now(UTC),
            )
            await record(
                call,
                "created",
                resource_id,
                projectId=project.id,
                environmentId=environment.id,
                name=body.name,
                slug=slug,
                kind=body.kind,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a resource with slug {slug!r} already exists in this environment",
            details={"slug": slug, "environmentId": environment.id},
        ) from exc
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
    rows = _visible(call.actor)
    if query.project_id:
        rows = rows.filter(project_id=query.project_id)
    if query.environment_id:
        rows = rows.filter(environment_id=query.environment_id)
    if query.cursor:
        rows = rows.filter(id__gt=query.cursor)
    found = await rows.order_by("id").limit(query.limit + 1)
    page = found[: query.limit]
    deployments = await _deployments(r.id for r in page)
    controls = await latest_runtime_controls([r.id for r in page])
    planned = await _planned_routes(call, page)
    bound = await latest_bound([r.id for r in page])
    more = len(found) > query.limit
    return ResourceList(
        items=[
            resource_item(
                r, deployments[r.id], controls.get(r.id), planned.get(r.id), bound.get(r.id)
            )
            for r in page
        ],
        next_cursor=page[-1].id if more and page else None,
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
    rows = _visible(call.actor)
    if query.project_id:
        rows = rows.filter(project_id=query.project_id)
    if query.environment_id:
        rows = rows.filter(environment_id=query.environment_id)
    return CountResponse(count=await rows.count())


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
    deployments = (await _deployments([row.id]))[row.id]
    latest = deployments[0] if deployments else None
    planned = (await _planned_routes(call, [row])).get(row.id)
    bound = (await latest_bound([row.id])).get(row.id)
    control = await latest_runtime_control(row.id)
    return ResourceShowResponse(
        resource=resource_item(row, deployments, control, planned, bound),
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
        access_summary=access_summary(deployments, planned, _durable(row, bound)),
        diagnostics=await variable_drift(call.request.app[KEYRING_KEY], row, latest),
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
    row = await get_resource(call.actor, call.path["resourceId"])
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(
            lifecycle_status="archived", archived_at=datetime.now(UTC)
        )
        await record(call, "archived", row.id, reason=body.reason)
    return IdResponse(id=row.id)


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
    row = await get_resource(call.actor, call.path["resourceId"])
    if body.confirmation.resource_slug != row.slug:
        raise InvalidRequest(
            "confirmation.resourceSlug must equal the slug of the resource being deleted",
            details=problem("confirmation.resourceSlug", "does not match"),
        )
    async with in_transaction():
        _ = await current_resource(row.id, allow_archived=True)
        active = await models.Deployment.filter(
            resource_id=row.id, status__in=list(ACTIVE_DEPLOYMENT_STATUSES)
        ).values_list("id", flat=True)
        if active:
            raise Conflict(
                "the resource has deployments in progress; wait for them or cancel them first",
                details={"deploymentIds": [str(i) for i in active]},
            )
        archive_ids = [
            str(i)
            for i in await models.SourceArchive.filter(resource_id=row.id).values_list(
                "id", flat=True
            )
        ]
        await models.ArchiveDownloadToken.filter(archive_id__in=archive_ids).delete()
        await models.SourceArchive.filter(id__in=archive_ids).delete()
        # Variables have no foreign key (their owner is polymorphic), so they go explicitly.
        removed = await models.Variable.filter(owner_kind=SCOPE, owner_id=row.id).delete()
        await models.Resource.filter(id=row.id).delete()
        await record(
            call,
            "deleted",
            row.id,
            name=row.name,
            slug=row.slug,
            variables=removed,
            sourceArchives=len(archive_ids),
        )
    await archives.remove_files(call.request.app[SETTINGS_KEY].data_dir, archive_ids)
    return IdResponse(id=row.id)


# ---- profiles and source ---------------------------------------------------------------------


def _stored(model: BaseModel) -> dict[str, Any]:
    """The JSON a profile column holds: camelCase, exactly as the API model dumps it."""
    return model.model_dump(mode="json", by_alias=True)


async def _configure(
    call: Call, column: str, value: dict[str, Any] | None, event: str
) -> IdResponse:
    row = await get_resource(call.actor, call.path["resourceId"])
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(**{column: value})
        await record(call, event, row.id, **{column: value})
    return IdResponse(id=row.id)


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
    row = await get_resource(call.actor, call.path["resourceId"])
    source = body.source
    if isinstance(source, LocalFolderSource) and "archiveId" in source.metadata:
        archive_id = source.metadata["archiveId"]
        if not await models.SourceArchive.exists(id=archive_id, resource_id=row.id):
            raise InvalidRequest(
                f"source archive {archive_id!r} does not belong to this resource",
                details=problem("source.metadata.archiveId", "unknown archive"),
            )
    stored = source.model_dump(mode="json", by_alias=True, exclude_none=True)
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(source=stored)
        await record(
            call, "source-configured", row.id, source=stored, idempotencyKey=body.idempotency_key
        )
    return IdResponse(id=row.id)
