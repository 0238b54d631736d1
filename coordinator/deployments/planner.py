"""Deployment planning: load the target, decide readiness, and build the immutable plan snapshot.

The planner is pure with respect to the database except for reads: it returns the runtime plan,
the artifact and the environment snapshot as JSON dicts that the caller stores on the row.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from coordinator import default_access
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments.host_ports import host_port_problems
from coordinator.hub.registry import Registry
from coordinator.ids import new_id
from coordinator.resource_config import ResourceConfig, load_resource_config
from coordinator.secrets import MASK, Keyring
from coordinator.settings import Settings
from coordinator.volumes import placement
from shared.errors import NotFound

_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")

# Reasons that refuse ``POST /deployments``; ``server-offline`` is only a warning because a
# deployment is a durable job: it waits in ``planned`` until the agent connects.
BLOCKING_ORDER: Final = (
    "project-archived",
    "environment-archived",
    "environment-locked",
    "resource-archived",
    "resource-environment-mismatch",
    "server-inactive",
    "resource-source-missing",
    "resource-source-archive-missing",
    "resource-source-unsupported",
    "network-port-missing",
    "storage-volume-server-mismatch",
    "dependency-server-mismatch",
    "host-port-replicas",
    "host-port-conflict",
)


@dataclass(frozen=True)
class Issue:
    """A reason a plan is blocked, or a warning about it."""

    code: str
    phase: str
    message: str
    recommendation: str | None = None
    profile_field: str | None = None
    entity_id: str | None = None
    entity_type: str | None = None


@dataclass(frozen=True)
class Target:
    """The rows a deployment names."""

    project: models.Project
    environment: models.Environment
    resource: models.Resource
    server: models.Server


@dataclass
class Plan:
    """Everything the planner decided about one target."""

    target: Target
    config: ResourceConfig
    online: bool
    blocking: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    image: str | None = None
    archive: models.SourceArchive | None = None
    hostnames: list[str] = field(default_factory=list)
    # The generated default-access name (policy of the server or the system), if any.
    default_access: dict[str, str] | None = None
    mounts: list[placement.PlannedMount] = field(default_factory=list)

    @property
    def rollout_strategy(self) -> str:
        """``blue-green`` (the default) or ``recreate``, from the runtime profile."""
        chosen = self.config.runtime_profile.get("rolloutStrategy")
        return "recreate" if chosen == "recreate" else "blue-green"

    @property
    def ready(self) -> bool:
        """Whether a deployment may be created."""
        return not self.blocking

    @property
    def source_kind(self) -> str | None:
        """``docker-image``, ``local-folder``... or None when no source is configured."""
        kind = (self.config.source or {}).get("kind")
        return str(kind) if kind else None

    @property
    def build_strategy(self) -> str | None:
        """``prebuilt-image`` for images, ``dockerfile`` for uploaded folders."""
        return {"docker-image": "prebuilt-image", "local-folder": "dockerfile"}.get(
            self.source_kind or ""
        )


def slug(text: str) -> str:
    """Hostname-safe label of a name (environments have no stored slug)."""
    return _NON_ALNUM.sub("-", text.lower()).strip("-")[:63].rstrip("-") or "env"


def image_reference(source: dict[str, Any]) -> str | None:
    """``imageName[:imageTag|@imageDigest]`` of a docker-image source."""
    name = source.get("imageName")
    if not name:
        return None
    if source.get("imageDigest"):
        return f"{name}@{source['imageDigest']}"
    return f"{name}:{source.get('imageTag') or 'latest'}"


def built_image_tag(resource_id: str, deployment_id: str) -> str:
    """Tag the agent gives an image it builds from an archive."""
    return f"berth/{resource_id}:{deployment_id}".lower()


async def load_target(
    actor: Principal, project_id: str, environment_id: str, resource_id: str, server_id: str
) -> Target:
    """Load the four rows the caller may see, or raise ``NotFound`` (hidden looks missing)."""
    org = actor.organization_id
    project = await models.Project.get_or_none(id=project_id, organization_id=org)
    if project is None or not actor.can_see_project(project.id):
        raise NotFound(f"project {project_id!r} not found")
    environment = await models.Environment.get_or_none(
        id=environment_id, project__organization_id=org
    )
    if environment is None or not actor.can_see_environment(
        environment.project_id,  # type: ignore[attr-defined]
        environment.id,
    ):
        raise NotFound(f"environment {environment_id!r} not found")
    resource = await models.Resource.get_or_none(id=resource_id, project__organization_id=org)
    if resource is None or not actor.can_see_resource(
        resource.project_id,  # type: ignore[attr-defined]
        resource.environment_id,  # type: ignore[attr-defined]
        resource.id,
    ):
        raise NotFound(f"resource {resource_id!r} not found")
    server = await models.Server.get_or_none(id=server_id, organization_id=org)
    if server is None or not actor.can_see_server(server.id):
        raise NotFound(f"server {server_id!r} not found")
    return Target(project, environment, resource, server)


def _lifecycle_issues(t: Target) -> list[Issue]:
    issues: list[Issue] = []
    if t.project.lifecycle_status == "archived":
        issues.append(
            Issue(
                "project-archived",
                "detect",
                "the project is archived",
                None,
                None,
                t.project.id,
                "project",
            )
        )
    if t.environment.lifecycle_status == "archived":
        issues.append(
            Issue(
                "environment-archived",
                "detect",
                "the environment is archived",
                None,
                None,
                t.environment.id,
                "environment",
            )
        )
    if t.environment.lifecycle_status == "locked":
        reason = t.environment.lock_reason or "no reason given"
        issues.append(
            Issue(
                "environment-locked",
                "detect",
                f"the environment is locked: {reason}",
                "unlock the environment",
                None,
                t.environment.id,
                "environment",
            )
        )
    if t.resource.lifecycle_status == "archived":
        issues.append(
            Issue(
                "resource-archived",
                "detect",
                "the resource is archived",
                None,
                None,
                t.resource.id,
                "resource",
            )
        )
    if (
        t.resource.environment_id != t.environment.id  # type: ignore[attr-defined]
        or t.resource.project_id != t.project.id  # type: ignore[attr-defined]
        or t.environment.project_id != t.project.id  # type: ignore[attr-defined]
    ):
        issues.append(
            Issue(
                "resource-environment-mismatch",
                "detect",
                "the resource does not belong to this project and environment",
                None,
                None,
                t.resource.id,
                "resource",
            )
        )
    if t.server.lifecycle_status != "active":
        issues.append(
            Issue(
                "server-inactive",
                "detect",
                "the server is deactivated",
                None,
                None,
                t.server.id,
                "server",
            )
        )
    return issues


async def _default_access(t: Target) -> dict[str, str] | None:
    """The resource's generated name under the server's default access policy, if any."""
    policy = await default_access.effective(t.server.organization_id, t.server.id)  # type: ignore[attr-defined]
    if policy is None:
        return None
    hostname = default_access.generated_hostname(
        t.resource.slug, slug(t.environment.name), t.project.slug, policy.base_domain
    )
    return {"hostname": hostname, "tlsMode": policy.tls_mode, "policyId": policy.policy_id}


def generated_hostname(
    project_slug: str, environment_name: str, resource_slug: str, edge_domain: str
) -> str:
    """The hostname Berth generates for a resource: ``web.production.shop.<edge domain>``."""
    return f"{resource_slug}.{slug(environment_name)}.{project_slug}.{edge_domain}"


async def assess(target: Target, keyring: Keyring, registry: Registry, settings: Settings) -> Plan:
    """Resolve source, profiles and target; collect blocking reasons and warnings."""
    config = await load_resource_config(keyring, target.resource)
    plan = Plan(target, config, online=registry.get(target.server.id) is not None)
    plan.blocking.extend(_lifecycle_issues(target))
    for dependency_id, server_id in sorted(config.dependency_servers.items()):
        if server_id != target.server.id:
            # Its private network exists only on that server.
            plan.blocking.append(
                Issue(
                    "dependency-server-mismatch",
                    "plan",
                    f"the bound database {dependency_id} runs on server {server_id}",
                    "deploy to that server, or bind a database that runs on this one",
                    None,
                    dependency_id,
                    "dependency-resource",
                )
            )
    source = config.source
    if source is None:
        plan.blocking.append(
            Issue(
                "resource-source-missing",
                "detect",
                "the resource has no source",
                "configure the resource's source",
                "source",
                target.resource.id,
                "resource",
            )
        )
    elif source.get("kind") == "docker-image":
        plan.image = image_reference(source)
        if plan.image is None:
            plan.blocking.append(
                Issue(
                    "resource-source-missing",
                    "detect",
                    "the docker-image source has no imageName",
                    "set source.imageName",
                    "source.imageName",
                    target.resource.id,
                    "resource",
                )
            )
    elif source.get("kind") == "local-folder":
        metadata = source.get("metadata") or {}
        archive_id = metadata.get("archiveId") if isinstance(metadata, dict) else None
        if archive_id:
            plan.archive = await models.SourceArchive.get_or_none(
                id=str(archive_id), resource_id=target.resource.id
            )
        if plan.archive is None:
            plan.blocking.append(
                Issue(
                    "resource-source-archive-missing",
                    "detect",
                    "the local-folder source has no uploaded archive",
                    "upload the folder's archive",
                    "source.metadata.archiveId",
                    target.resource.id,
                    "resource",
                )
            )
    else:
        plan.blocking.append(
            Issue(
                "resource-source-unsupported",
                "detect",
                f"source kind {source.get('kind')!r} cannot be deployed by this coordinator",
                None,
                "source.kind",
                target.resource.id,
                "resource",
            )
        )
    network = config.network_profile
    for problem in await host_port_problems(target.resource, target.server, config):
        plan.blocking.append(
            Issue(
                problem.code,
                "plan",
                problem.message,
                problem.recommendation,
                "networkProfile.hostPort",
                problem.entity_id,
                "resource",
            )
        )
    if network.get("exposureMode") == "reverse-proxy":
        if not network.get("internalPort"):
            plan.blocking.append(
                Issue(
                    "network-port-missing",
                    "plan",
                    "reverse-proxy exposure needs networkProfile.internalPort",
                    "set networkProfile.internalPort",
                    "networkProfile.internalPort",
                    target.resource.id,
                    "resource",
                )
            )
        else:
            plan.hostnames = [
                generated_hostname(
                    target.project.slug,
                    target.environment.name,
                    target.resource.slug,
                    settings.edge_domain,
                )
            ]
            plan.default_access = await _default_access(target)
    _storage_issues(plan, await placement.planned_mounts(target.resource.id))
    if not plan.online:
        seen = target.server.last_seen_at
        plan.warnings.append(
            Issue(
                "server-offline",
                "dispatch",
                (
                    f"agent offline since {seen.astimezone(UTC).isoformat(timespec='seconds')}"
                    if seen is not None
                    else "the server's agent has never connected"
                )
                + "; the deployment waits in planned until it is back",
                "start the agent on the server",
                None,
                target.server.id,
                "server",
            )
        )
    order = {code: i for i, code in enumerate(BLOCKING_ORDER)}
    plan.blocking.sort(key=lambda issue: order.get(issue.code, len(order)))
    return plan


def _storage_issues(plan: Plan, mounts: list[placement.PlannedMount]) -> None:
    """Placement (a volume lives on one server) and what the rollout strategy means for it."""
    plan.mounts = mounts
    server_id = plan.target.server.id
    for mount in mounts:
        if mount.server_id is not None and mount.server_id != server_id:
            plan.blocking.append(
                Issue(
                    "storage-volume-server-mismatch",
                    "plan",
                    f"storage volume {mount.name} lives on server {mount.server_id}, "
                    f"not on {server_id}",
                    "deploy to the volume's server, or detach the volume",
                    None,
                    mount.volume_id,
                    "storage-volume",
                )
            )
    writers = [m for m in mounts if not m.read_only]
    if not writers:
        return
    names = ", ".join(m.name for m in writers)
    if plan.rollout_strategy == "recreate":
        plan.warnings.append(
            Issue(
                "rollout-recreate-downtime",
                "start",
                f"recreate: the old containers stop before the new ones start, so the resource "
                f"is briefly unavailable; {names} has one writer at a time",
                None,
                "runtimeProfile.rolloutStrategy",
                plan.target.resource.id,
                "resource",
            )
        )
    else:
        plan.warnings.append(
            Issue(
                "rollout-shared-volume",
                "start",
                f"blue-green: the new containers start beside the old ones, so both write to "
                f"{names} for a moment",
                "choose runtimeProfile.rolloutStrategy recreate for software that must be "
                "the only writer",
                "runtimeProfile.rolloutStrategy",
                plan.target.resource.id,
                "resource",
            )
        )


def build_artifact(plan: Plan, deployment_id: str) -> dict[str, Any]:
    """The artifact the agent runs: an image reference, or an archive plus the tag to build."""
    if plan.archive is not None:
        runtime = plan.config.runtime_profile
        return {
            "kind": "archive",
            "archiveId": plan.archive.id,
            "sha256": plan.archive.sha256,
            "sizeBytes": plan.archive.size_bytes,
            "dockerfilePath": runtime.get("dockerfilePath") or "Dockerfile",
            "buildTarget": runtime.get("buildTarget"),
            "image": built_image_tag(plan.target.resource.id, deployment_id),
            "imageId": None,
        }
    return {"kind": "image", "image": plan.image, "imageId": None}


def health_port(plan: Plan) -> int | None:
    """The container port the health check probes."""
    http = plan.config.health_policy.get("http") or {}
    port = http.get("port") or plan.config.network_profile.get("internalPort")
    return int(port) if port else None


def build_runtime_plan(
    plan: Plan, deployment_id: str, artifact: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The seed's ``runtimePlan`` shape, with Berth's execution details under ``metadata``."""
    cfg, t = plan.config, plan.target
    source = dict(cfg.source or {})
    network, runtime, health = cfg.network_profile, cfg.runtime_profile, cfg.health_policy
    building = artifact["kind"] == "archive"
    return {
        "id": new_id("rplan"),
        "source": {
            "kind": source.get("kind"),
            "locator": source.get("locator") or source.get("imageName"),
            "displayName": source.get("displayName"),
            "metadata": source.get("metadata") or {},
        },
        "buildStrategy": plan.build_strategy,
        "packagingMode": "build-on-server" if building else "prebuilt-image",
        "runtimeArtifact": {
            "kind": "image",
            "intent": "build-image" if building else "pull-image",
            "image": artifact.get("image"),
            "metadata": {"archiveId": artifact.get("archiveId")} if building else {},
        },
        "execution": {
            "kind": "docker-container",
            "startCommand": runtime.get("startCommand"),
            "healthCheckPath": (health.get("http") or {}).get("path", "/"),
            "healthCheck": health,
            "port": network.get("internalPort"),
            "image": artifact.get("image"),
            "dockerfilePath": runtime.get("dockerfilePath") if building else None,
            "accessRoutes": [
                {
                    "proxyKind": "edge" if plan.hostnames else "none",
                    "domains": plan.hostnames,
                    "pathPrefix": cfg.access_profile.get("pathPrefix") or "/",
                    "tlsMode": "disabled",
                    "targetPort": network.get("internalPort"),
                }
            ],
            "verificationSteps": [{"kind": "internal-http", "label": "health check"}]
            if health.get("enabled")
            else [],
            "metadata": {
                "cpus": runtime.get("cpus"),
                "memoryBytes": runtime.get("memoryBytes"),
                "replicas": runtime.get("replicas") or 1,
                "resourceSlug": t.resource.slug,
                "healthPort": health_port(plan),
                "networks": plan.config.dependency_networks,
                "rolloutStrategy": plan.rollout_strategy,
                "mounts": [m.as_plan() for m in plan.mounts],
                "hostPort": network.get("hostPort"),
                "defaultAccess": plan.default_access,
            },
        },
        "target": {
            "kind": t.server.target_kind,
            "providerKey": t.server.provider_key,
            "serverIds": [t.server.id],
            "metadata": {"deploymentId": deployment_id},
        },
        "detectSummary": f"{source.get('kind')} source, {plan.build_strategy} strategy",
        "steps": (["fetch", "build"] if building else ["pull"])
        + (["stop-old"] if plan.rollout_strategy == "recreate" else [])
        + ["start", "health", "switch", "drain"],
        "generatedAt": now.isoformat(),
    }


def build_snapshot(
    plan: Plan, keyring: Keyring, deployment_id: str, now: datetime, binding: Any
) -> dict[str, Any]:
    """The environment snapshot: plain values inline, secrets only as ciphertext (``sealed``)."""
    rows: list[dict[str, Any]] = []
    for entry in plan.config.entries:
        row: dict[str, Any] = {
            "key": entry.key,
            "value": MASK if entry.is_secret else entry.value,
            "scope": entry.scope,
            "exposure": entry.exposure,
            "isSecret": entry.is_secret,
            "kind": "secret" if entry.is_secret else "plain-config",
        }
        if entry.is_secret:
            row["sealed"] = keyring.encrypt(
                entry.value, binding(deployment_id, entry.key, entry.exposure)
            )
        rows.append(row)
    return {
        "id": new_id("envsnap"),
        "environmentId": plan.target.environment.id,
        "createdAt": now.isoformat(),
        "precedence": ["environment", "resource"],
        "sealedFor": deployment_id,
        "variables": rows,
        # The dependency bindings injected above (their URLs are sealed variables).
        "dependencyBindings": list(plan.config.dependency_bindings),
    }


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)
