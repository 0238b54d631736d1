"""Dependency-binding routes of a resource: parse, authorize, call the service, shape."""

from datetime import UTC, datetime
from typing import Final

from coordinator.api.dependency_resources import connection_of, readiness_of, secret_ref
from coordinator.api.dependency_schemas import (
    BoundRedeployment,
    CreateDependencyBindingRequest,
    DependencyBindingItem,
    DependencyBindingList,
    DependencyBindingShow,
    DependencyBindingTarget,
    DependencyReadiness,
    DependencySecretRotation,
    SecretRotationRequest,
    SecretRotationResponse,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.db.dependency_models import DependencyBinding
from coordinator.dependencies import PROVISIONER_KEY, bindings, service
from coordinator.deployments import redeploy
from coordinator.lookup import get_resource
from shared.errors import InvalidRequest, NotFound, PlatformError

TAG: Final = "dependency-resources"
READ: Final = "dependency-resources:read"
WRITE: Final = "dependency-resources:write"


async def binding_item(call: Call, row: DependencyBinding) -> DependencyBindingItem:
    """The API item of a stored binding (its dependency may since have been deleted)."""
    dependency = await bindings.dependency_of(row)
    return DependencyBindingItem(
        id=row.id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        resource_id=row.resource_id,
        dependency_resource_id=dependency.id,
        dependency_resource_name=dependency.name,
        dependency_resource_slug=dependency.slug,
        kind=dependency.kind,  # type: ignore[arg-type]
        source_mode=dependency.source_mode,  # type: ignore[arg-type]
        provider_key=dependency.provider_key,
        provider_managed=dependency.source_mode == service.MANAGED,
        lifecycle_status=dependency.lifecycle_status,  # type: ignore[arg-type]
        target=DependencyBindingTarget(
            target_name=row.target_name,
            scope="environment",
            injection_mode="env",
            secret_ref=secret_ref(dependency),
        ),
        secret_rotation=DependencySecretRotation(
            secret_ref=secret_ref(dependency),
            secret_version=f"v{row.secret_version}",
            rotated_at=row.rotated_at,
            previous_secret_version=(
                f"v{row.previous_secret_version}" if row.previous_secret_version else None
            ),
        ),
        connection=connection_of(call, dependency),
        binding_readiness=readiness_of(dependency),
        snapshot_readiness=DependencyReadiness(
            status="ready", reason="injected into the resource's next deployment"
        ),
        status=row.status,  # type: ignore[arg-type]
        created_at=row.created_at,
        removed_at=row.removed_at,
    )


@route(
    "POST",
    "/resources/{resourceId}/dependency-bindings",
    summary="Bind a dependency resource: its connection URL becomes env targetName",
    tag=TAG,
    permission=WRITE,
    body=CreateDependencyBindingRequest,
    response=IdResponse,
    status=201,
)
async def create_binding(call: Call) -> IdResponse:
    """The dependency must be ready and in the resource's environment."""
    body = call.body(CreateDependencyBindingRequest)
    binding_id = await bindings.create(
        call.actor,
        call.request_id,
        call.path["resourceId"],
        body.dependency_resource_id,
        body.target_name,
    )
    return IdResponse(id=binding_id)


@route(
    "GET",
    "/resources/{resourceId}/dependency-bindings",
    summary="List a resource's dependency bindings (no raw secrets)",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DependencyBindingList,
)
async def list_bindings(call: Call) -> DependencyBindingList:
    """Active bindings, oldest first."""
    rows = await bindings.listed(call.actor, call.path["resourceId"])
    return DependencyBindingList(
        items=[await binding_item(call, r) for r in rows], generated_at=datetime.now(UTC)
    )


@route(
    "GET",
    "/resources/{resourceId}/dependency-bindings/{bindingId}",
    summary="Show one dependency binding",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=DependencyBindingShow,
)
async def show_binding(call: Call) -> DependencyBindingShow:
    """One active binding of the resource."""
    row = await bindings.get(call.actor, call.path["resourceId"], call.path["bindingId"])
    return DependencyBindingShow(
        binding=await binding_item(call, row), generated_at=datetime.now(UTC)
    )


@route(
    "DELETE",
    "/resources/{resourceId}/dependency-bindings/{bindingId}",
    summary="Remove a dependency binding (the database itself is untouched)",
    tag=TAG,
    permission=WRITE,
    response=IdResponse,
)
async def delete_binding(call: Call) -> IdResponse:
    """The next deployment no longer gets the variable."""
    binding_id = await bindings.delete(
        call.actor, call.request_id, call.path["resourceId"], call.path["bindingId"]
    )
    return IdResponse(id=binding_id)


@route(
    "POST",
    "/resources/{resourceId}/dependency-bindings/{bindingId}/secret-rotations",
    summary="Rotate the bound database's password (set in the database, used by next deployments)",
    tag=TAG,
    permission=WRITE,
    body=SecretRotationRequest,
    response=SecretRotationResponse,
    errors=(*AGENT_ERRORS, 502),
)
async def rotate_secret(call: Call) -> SecretRotationResponse:
    """The caller confirms that earlier deployments keep the URL they were made with."""
    body = call.body(SecretRotationRequest)
    if not body.confirm_historical_snapshots_remain_unchanged:
        raise InvalidRequest(
            "confirmHistoricalSnapshotsRemainUnchanged must be true",
            details={"field": "confirmHistoricalSnapshotsRemainUnchanged"},
        )
    rotated = await bindings.rotate(
        call.actor,
        call.request_id,
        call.path["resourceId"],
        call.path["bindingId"],
        call.keyring,
        call.request.app[PROVISIONER_KEY],
    )
    return SecretRotationResponse(
        id=rotated.binding_id,
        rotated_at=rotated.rotated_at,
        secret_version=f"v{rotated.secret_version}",
        redeployments=(
            await _redeploy_bound(call, rotated.bound_resource_ids)
            if body.redeploy_bound_resources
            else None
        ),
    )


async def _redeploy_bound(call: Call, resource_ids: tuple[str, ...]) -> list[BoundRedeployment]:
    """Start each bound resource's redeployment with the caller's rights; a refusal is reported
    per resource (the rotation itself is done and stays done). Resources the caller cannot see
    are left out, unnamed: their owners redeploy them."""
    started: list[BoundRedeployment] = []
    for resource_id in resource_ids:
        try:
            _ = await get_resource(call.actor, resource_id)
        except NotFound:
            continue
        try:
            call.actor.require("deployments:write")
            deployment_id = await redeploy(call, resource_id)
        except PlatformError as exc:
            started.append(
                BoundRedeployment(
                    resource_id=resource_id, error_code=exc.code.value, error_message=exc.message
                )
            )
        else:
            started.append(BoundRedeployment(resource_id=resource_id, deployment_id=deployment_id))
    return started
