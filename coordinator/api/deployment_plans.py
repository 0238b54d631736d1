"""Deployment planning routes: plan preview and create, plus the create path recovery reuses."""

from datetime import UTC, datetime
from typing import Final

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
    PlanStorage,
    PlanStorageVolume,
    Readiness,
)
from coordinator.api.deployment_views import (
    DependencyBindingsSection,
    binding_references,
    bindings_section,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse
from coordinator.deployments import assess, create_deployment, planner
from coordinator.deployments.creation import not_ready
from coordinator.deployments.plan_evidence import issue_evidence
from coordinator.deployments.planner import Issue, Plan

TAG = "deployments"


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


def _storage(plan: Plan) -> PlanStorage:
    server_id = plan.target.server.id
    strategy = plan.rollout_strategy
    writers = [m.name for m in plan.mounts if not m.read_only]
    if strategy == "recreate":
        summary = "recreate: the old containers stop before the new ones start (brief downtime)"
    elif writers:
        summary = (
            "blue-green: the new containers start beside the old ones, both using "
            f"{', '.join(writers)} read-write for a moment"
        )
    else:
        summary = "blue-green: the new containers start beside the old ones, then take traffic"
    return PlanStorage(
        rollout_strategy=strategy,  # type: ignore[arg-type]
        downtime=strategy == "recreate",
        summary=summary,
        volumes=[
            PlanStorageVolume(
                storage_volume_id=m.volume_id,
                name=m.name,
                kind=m.kind,  # type: ignore[arg-type]
                destination_path=m.destination,
                mount_mode="read-only" if m.read_only else "read-write",
                server_id=m.server_id,
                placement="placed-by-this-deployment"
                if m.server_id is None
                else "on-target-server"
                if m.server_id == server_id
                else "other-server",
            )
            for m in plan.mounts
        ],
    )


def _bindings(plan: Plan) -> DependencyBindingsSection:
    refused = [i.message for i in plan.blocking if i.code.startswith("dependency-")]
    references = binding_references(
        plan.config.dependency_bindings, "captured in the deployment's environment snapshot"
    )
    return bindings_section(references, "; ".join(refused) or None)


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
        storage=_storage(plan),
        dependency_bindings=_bindings(plan),
        warnings=[_issue(i, "warning", plan) for i in plan.warnings],
        unsupported_reasons=[_issue(i, "blocked", plan) for i in plan.blocking],
        next_actions=next_actions,
        generated_at=datetime.now(UTC),
    )


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
