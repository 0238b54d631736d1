"""Deployment creation: write a planned deployment, its first events and audit, then run it."""

from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments import planner
from coordinator.deployments.engine import DeploymentEngine
from coordinator.deployments.planner import Plan
from coordinator.deployments.store import ACTIVE, EventSpec, snapshot_binding
from coordinator.ids import new_id
from coordinator.secrets import Keyring
from coordinator.volumes import placement
from shared.errors import Conflict


def not_ready(codes: list[str]) -> Conflict:
    """409 naming the reasons a plan is not ready."""
    return Conflict(
        f"the deployment is not ready: {', '.join(codes)}", details={"reasonCodes": codes}
    )


async def create(
    engine: DeploymentEngine,
    keyring: Keyring,
    actor: Principal,
    request_id: str,
    plan: Plan,
    *,
    trigger_kind: str,
    source_deployment_id: str | None = None,
    rollback_of: models.Deployment | None = None,
    candidate: models.Deployment | None = None,
) -> str:
    """Write a planned deployment with its first events and audit event, then hand it over."""
    t = plan.target
    now = datetime.now(UTC)
    deployment_id = new_id("dep")
    if candidate is not None:
        # A rollback runs the candidate's exact image and configuration: no rebuild.
        built = dict(candidate.artifact or {})
        image = built.get("imageId") or built.get("image")
        artifact: dict[str, Any] = {"kind": "image", "image": image, "imageId": None}
        artifact["rollbackOfArtifact"] = built
        runtime_plan = dict(candidate.runtime_plan or {})
        runtime_plan["id"] = new_id("rplan")
        runtime_plan["generatedAt"] = now.isoformat()
        snapshot = dict(candidate.environment_snapshot or {})
        snapshot.setdefault("sealedFor", candidate.id)
    else:
        artifact = planner.build_artifact(plan, deployment_id)
        runtime_plan = planner.build_runtime_plan(plan, deployment_id, artifact, now)
        snapshot = planner.build_snapshot(plan, keyring, deployment_id, now, snapshot_binding)
    async with in_transaction():
        # Lock the resource row so two creates cannot both pass the in-flight check (Postgres).
        await models.Resource.filter(id=t.resource.id).select_for_update().first()
        busy = await models.Deployment.filter(
            resource_id=t.resource.id, server_id=t.server.id, status__in=list(ACTIVE)
        ).first()
        if busy is not None:
            raise Conflict(
                f"deployment {busy.id} of this resource on this server is still {busy.status}",
                details={"deploymentId": busy.id, "status": busy.status},
            )
        _ = await engine.store.create(
            {
                "id": deployment_id,
                "organization_id": actor.organization_id,
                "project_id": t.project.id,
                "environment_id": t.environment.id,
                "resource_id": t.resource.id,
                "server_id": t.server.id,
                "status": "planned",
                "trigger_kind": trigger_kind,
                "source_deployment_id": source_deployment_id,
                "rollback_of_deployment_id": rollback_of.id if rollback_of else None,
                "rollback_candidate_deployment_id": candidate.id if candidate else None,
                "runtime_plan": runtime_plan,
                "environment_snapshot": snapshot,
                "artifact": artifact,
                "created_by": actor.actor_id,
                "created_at": now,
            },
            [
                (
                    EventSpec("deployment-requested", "detect", f"{trigger_kind} requested"),
                    "created",
                ),
                (EventSpec("planning-started", "plan", "planning started"), "planning"),
                (
                    EventSpec("plan-ready", "plan", str(runtime_plan.get("detectSummary"))),
                    "planned",
                ),
            ],
        )
        # A volume lives where its first deployment puts it; the planner refuses any other server.
        await placement.place(runtime_plan, t.server.id)
        await audit.record(
            actor=actor,
            event_type="deployment.created",
            aggregate_type="deployment",
            aggregate_id=deployment_id,
            payload={
                "resourceId": t.resource.id,
                "serverId": t.server.id,
                "triggerKind": trigger_kind,
                "sourceDeploymentId": source_deployment_id,
                "rollbackOfDeploymentId": rollback_of.id if rollback_of else None,
                "rollbackCandidateDeploymentId": candidate.id if candidate else None,
            },
            request_id=request_id,
        )
    await engine.submit(deployment_id, t.server.id)
    return deployment_id
