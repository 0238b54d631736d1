"""Deployment planning routes: plan preview and create, plus the create path recovery reuses."""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.api.deployment_schemas import (
    DeploymentTarget,
    FixAction,
    NextAction,
    PlanAccess,
    PlanArtifact,
    PlanCommand,
    PlanContext,
    PlanEvidence,
    PlanHealth,
    PlanIssue,
    PlanNetwork,
    PlanPlanner,
    PlanResponse,
    PlanSource,
    Readiness,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse
from coordinator.appkeys import ENGINE_KEY, KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.db import models
from coordinator.deployments import planner
from coordinator.deployments.engine import DeploymentEngine
from coordinator.deployments.plan_evidence import issue_evidence
from coordinator.deployments.planner import Issue, Plan
from coordinator.deployments.store import (
    ACTIVE,
    EventSpec,
    snapshot_binding,
)
from coordinator.ids import new_id
from shared.errors import Conflict

TAG = "deployments"


def engine_of(call: Call) -> DeploymentEngine:
    """The app's deployment engine."""
    return call.request.app[ENGINE_KEY]


async def assess(call: Call, target: planner.Target) -> Plan:
    """Run the planner for ``target`` with the app's keyring, registry and settings."""
    app = call.request.app
    return await planner.assess(target, app[KEYRING_KEY], app[REGISTRY_KEY], app[SETTINGS_KEY])


# The Berth operation that resolves each issue; issues missing here have no API fix (start the
# agent, restore by hand...) and answer an empty fixPath.
_FIXES: Final[dict[str, tuple[str, str]]] = {
    "project-archived": ("projects.restore", "Restore the project"),
    "environment-locked": ("environments.unlock", "Unlock the environment"),
    "resource-source-missing": ("resources.configure-source", "Configure the source"),
    "resource-source-unsupported": ("resources.configure-source", "Configure the source"),
    "resource-source-archive-missing": (
        "resources.configure-source",
        "Upload the folder's archive and configure the source with it",
    ),
    "network-port-missing": ("resources.configure-network-profile", "Set the internal port"),
}


def _issue(issue: Issue, category: str, plan: Plan) -> PlanIssue:
    fix = _FIXES.get(issue.code)
    return PlanIssue(
        code=issue.code,
        reason_code=issue.code,
        category=category,  # type: ignore[arg-type]
        phase=issue.phase,
        message=issue.message,
        recommendation=issue.recommendation,
        evidence=[
            PlanEvidence(kind=e.kind, label=e.label, value=e.value, source=e.source)
            for e in issue_evidence(issue, plan)
        ],
        affected_profile_field=issue.profile_field,
        related_entity_id=issue.entity_id,
        related_entity_type=issue.entity_type,
        fix_path=[
            FixAction(
                kind="command",
                target_operation=fix[0],
                label=fix[1],
                profile_field=issue.profile_field,
                # A command changes configuration: never run without the user asking.
                safe_by_default=False,
            )
        ]
        if fix
        else [],
    )


def plan_response(plan: Plan) -> PlanResponse:
    """``deployments.plan/v1`` of an assessed plan."""
    t, cfg = plan.target, plan.config
    source = cfg.source or {}
    network, runtime, health = cfg.network_profile, cfg.runtime_profile, cfg.health_policy
    metadata = source.get("metadata") or {}
    building = plan.archive is not None
    commands = []
    if runtime.get("startCommand"):
        commands.append(
            PlanCommand(
                kind="start",
                command=str(runtime["startCommand"]),
                source="resource-runtime-profile",
            )
        )
    reasoning = [f"source kind {plan.source_kind}"] if plan.source_kind else []
    next_actions = [
        NextAction(
            kind="command",
            target_operation="deployments.create",
            label="Deploy",
            safe_by_default=False,
            blocked_reason_code=plan.blocking[0].code if plan.blocking else None,
        )
    ]
    if any(i.code.startswith("resource-source") for i in plan.blocking):
        next_actions.append(
            NextAction(
                kind="command",
                target_operation="resources.configure-source",
                label="Configure the source",
                safe_by_default=True,
            )
        )
    return PlanResponse(
        context=PlanContext(
            project_id=t.project.id,
            environment_id=t.environment.id,
            resource_id=t.resource.id,
            server_id=t.server.id,
            project_name=t.project.name,
            environment_name=t.environment.name,
            resource_name=t.resource.name,
            server_name=t.server.name,
        ),
        readiness=Readiness(
            status="ready" if plan.ready else "blocked",
            ready=plan.ready,
            reason_codes=[i.code for i in plan.blocking],
        ),
        source=PlanSource(
            kind=plan.source_kind,
            display_name=source.get("displayName"),
            locator=source.get("locator"),
            image_name=source.get("imageName"),
            image_tag=source.get("imageTag"),
            archive_id=metadata.get("archiveId") if isinstance(metadata, dict) else None,
            dockerfile_path=runtime.get("dockerfilePath") if building else None,
            reasoning=reasoning,
        ),
        planner=PlanPlanner(
            planner_key="berth-agent",
            support_tier="first-class",
            build_strategy=plan.build_strategy,
            packaging_mode=("build-on-server" if building else "prebuilt-image")
            if plan.source_kind
            else None,
            target_kind=t.server.target_kind,
            target_provider_key=t.server.provider_key,
        ),
        artifact=PlanArtifact(
            kind=("dockerfile-image" if building else "prebuilt-image")
            if plan.source_kind
            else None,
            runtime_artifact_kind="image",
            runtime_artifact_intent=("build-image" if building else "pull-image")
            if plan.source_kind
            else None,
            image=plan.image if not building else "berth/<resourceId>:<deploymentId>",
            metadata={"archiveId": plan.archive.id} if plan.archive else {},
        ),
        commands=commands,
        network=PlanNetwork(
            internal_port=network.get("internalPort"),
            upstream_protocol=str(network.get("upstreamProtocol") or "http"),
            exposure_mode=str(network.get("exposureMode") or "none"),
            host_port=network.get("hostPort"),
            target_service_name=network.get("targetServiceName"),
            hostnames=plan.hostnames,
        ),
        health=PlanHealth(
            enabled=bool(health.get("enabled")),
            kind=str(health.get("type") or "http"),
            path=str((health.get("http") or {}).get("path") or "/"),
            port=planner.health_port(plan),
        ),
        access=PlanAccess(
            route_source="generated-default" if plan.hostnames else None,
            hostname=plan.hostnames[0] if plan.hostnames else None,
            scheme="http" if plan.hostnames else None,
            route_count=len(plan.hostnames),
            route_group_count=1 if plan.hostnames else 0,
        ),
        warnings=[_issue(i, "warning", plan) for i in plan.warnings],
        unsupported_reasons=[_issue(i, "blocked", plan) for i in plan.blocking],
        next_actions=next_actions,
        generated_at=datetime.now(UTC),
    )


def not_ready(codes: list[str]) -> Conflict:
    return Conflict(
        f"the deployment is not ready: {', '.join(codes)}", details={"reasonCodes": codes}
    )


async def create_deployment(
    call: Call,
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
        snapshot = planner.build_snapshot(plan, call.keyring, deployment_id, now, snapshot_binding)
    engine = engine_of(call)
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
                "organization_id": call.actor.organization_id,
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
                "created_by": call.actor.actor_id,
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
        await audit.record(
            actor=call.actor,
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
            request_id=call.request_id,
        )
    await engine.submit(deployment_id, t.server.id)
    return deployment_id


@route(
    "GET",
    "/deployments/plan",
    summary="Preview the deployment plan and its readiness",
    tag=TAG,
    permission="deployments:read",
    query=DeploymentTarget,
    response=PlanResponse,
)
async def plan(call: Call) -> PlanResponse:
    """``deployments.plan/v1``; nothing is written."""
    q = call.query(DeploymentTarget)
    target = await planner.load_target(
        call.actor, q.project_id, q.environment_id, q.resource_id, q.server_id
    )
    return plan_response(await assess(call, target))


@route(
    "POST",
    "/deployments",
    summary="Create a deployment (planned at once, run by the server's agent)",
    tag=TAG,
    permission="deployments:write",
    body=DeploymentTarget,
    response=IdResponse,
    status=201,
)
async def create(call: Call) -> IdResponse:
    """Plan and record a deployment; 409 with ``reasonCodes`` when it is not ready."""
    b = call.body(DeploymentTarget)
    target = await planner.load_target(
        call.actor, b.project_id, b.environment_id, b.resource_id, b.server_id
    )
    assessed = await assess(call, target)
    if not assessed.ready:
        raise not_ready([i.code for i in assessed.blocking])
    return IdResponse(id=await create_deployment(call, assessed, trigger_kind="create"))
