"""The evidence behind a plan's warnings and blocking reasons: the values the planner observed."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final

from coordinator.deployments.planner import Issue, Plan

# How an absent value reads: evidence values are always text, and "" would look like a value.
NOT_SET: Final = "not set"


@dataclass(frozen=True)
class Evidence:
    """One observed value: ``label`` names the field, ``source`` the entity it was read from."""

    kind: str
    label: str
    value: str
    source: str


def _text(value: Any) -> str:
    return NOT_SET if value is None or value == "" else str(value)


def _lifecycle(entity: str, status: str) -> list[Evidence]:
    return [Evidence("lifecycle-status", f"{entity}.lifecycleStatus", status, entity)]


def _source_field(plan: Plan, path: str) -> Evidence:
    value: Any = plan.config.source
    for key in path.split(".")[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return Evidence("profile-field", path, _text(value), "resource")


def _environment_locked(plan: Plan) -> list[Evidence]:
    env = plan.target.environment
    return [
        *_lifecycle("environment", env.lifecycle_status),
        Evidence(
            "lifecycle-status", "environment.lockReason", _text(env.lock_reason), "environment"
        ),
    ]


def _mismatch(plan: Plan) -> list[Evidence]:
    # The ids the rows hold, to compare with the projectId/environmentId the caller named.
    resource, environment = plan.target.resource, plan.target.environment
    return [
        Evidence("ownership", label, str(value), entity)
        for label, value, entity in (
            ("resource.projectId", resource.project_id, "resource"),  # type: ignore[attr-defined]
            ("resource.environmentId", resource.environment_id, "resource"),  # type: ignore[attr-defined]
            ("environment.projectId", environment.project_id, "environment"),  # type: ignore[attr-defined]
        )
    ]


def _source_missing(plan: Plan) -> list[Evidence]:
    if plan.config.source is None:
        return [Evidence("profile-field", "source", NOT_SET, "resource")]
    return [_source_field(plan, "source.kind"), _source_field(plan, "source.imageName")]


def _archive_missing(plan: Plan) -> list[Evidence]:
    evidence = [
        _source_field(plan, "source.kind"),
        _source_field(plan, "source.metadata.archiveId"),
    ]
    if evidence[1].value != NOT_SET:
        # An id is set but names no archive uploaded for this resource.
        evidence.append(Evidence("source-archive", "sourceArchive", "not found", "coordinator"))
    return evidence


def _network_port(plan: Plan) -> list[Evidence]:
    network = plan.config.network_profile
    return [
        Evidence(
            "profile-field",
            "networkProfile.exposureMode",
            _text(network.get("exposureMode")),
            "resource",
        ),
        Evidence(
            "profile-field",
            "networkProfile.internalPort",
            _text(network.get("internalPort")),
            "resource",
        ),
    ]


def _server_offline(plan: Plan) -> list[Evidence]:
    seen = plan.target.server.last_seen_at
    return [
        Evidence("agent-link", "agentLink", "offline", "coordinator"),
        Evidence(
            "agent-link",
            "server.lastSeenAt",
            seen.astimezone(UTC).isoformat(timespec="seconds") if seen else "never",
            "server",
        ),
    ]


_BY_CODE: Final[dict[str, Callable[[Plan], list[Evidence]]]] = {
    "project-archived": lambda p: _lifecycle("project", p.target.project.lifecycle_status),
    "environment-archived": lambda p: _lifecycle(
        "environment", p.target.environment.lifecycle_status
    ),
    "environment-locked": _environment_locked,
    "resource-archived": lambda p: _lifecycle("resource", p.target.resource.lifecycle_status),
    "resource-environment-mismatch": _mismatch,
    "server-inactive": lambda p: _lifecycle("server", p.target.server.lifecycle_status),
    "resource-source-missing": _source_missing,
    "resource-source-archive-missing": _archive_missing,
    "resource-source-unsupported": lambda p: [_source_field(p, "source.kind")],
    "network-port-missing": _network_port,
    "server-offline": _server_offline,
}


def issue_evidence(issue: Issue, plan: Plan) -> list[Evidence]:
    """What the planner saw when it raised ``issue``; empty for a code without evidence."""
    build = _BY_CODE.get(issue.code)
    return build(plan) if build else []
