"""Terminal targets: the deployment a resource terminal enters, and the audit of an opened one."""

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.lookup import get_resource
from coordinator.terminals.session import TerminalSession
from shared.errors import Conflict, NotFound


async def resource_target(
    actor: Principal, resource_id: str, deployment_id: str | None
) -> tuple[str, str]:
    """The server and deployment whose container a resource terminal enters."""
    resource = await get_resource(actor, resource_id)
    rows = models.Deployment.filter(resource_id=resource.id, organization_id=actor.organization_id)
    # A named deployment is entered whatever its status (its container may still run); by
    # default the latest successful deployment is the one serving.
    rows = rows.filter(id=deployment_id) if deployment_id else rows.filter(status="succeeded")
    deployment = await rows.order_by("-created_at").first()
    if deployment is None:
        if deployment_id:
            raise NotFound(f"deployment {deployment_id!r} of resource {resource_id!r} not found")
        raise Conflict(f"resource {resource_id!r} has no successful deployment to enter")
    if not actor.can_see_server(deployment.server_id):
        raise NotFound(f"resource {resource_id!r} not found")
    return deployment.server_id, deployment.id


async def record_opened(
    actor: Principal,
    request_id: str,
    session: TerminalSession,
    *,
    container_id: str | None,
    program: str | None,
) -> None:
    """Audit an opened terminal session (never its arguments: they may carry secrets)."""
    async with in_transaction():
        await audit.record(
            actor=actor,
            event_type="terminal-session.opened",
            aggregate_type="terminal-session",
            aggregate_id=session.session_id,
            payload={
                "scope": session.scope,
                "serverId": session.server_id,
                "resourceId": session.resource_id,
                "deploymentId": session.deployment_id,
                "containerId": container_id,
                "program": program,
            },
            request_id=request_id,
        )
