"""Deployment reads: the caller's visible deployments, their context, logs, events and siblings."""

from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments.store import ACTIVE


@dataclass(frozen=True)
class Filters:
    """List/count filters; ``statuses`` empty means every status."""

    project_id: str | None = None
    resource_id: str | None = None
    server_id: str | None = None
    statuses: frozenset[str] = frozenset()
    include_archived: bool = False


@dataclass(frozen=True)
class Context:
    """The rows a deployment points at (any may be gone since)."""

    project: models.Project | None
    environment: models.Environment | None
    resource: models.Resource | None
    server: models.Server | None


def visible(actor: Principal) -> QuerySet[models.Deployment]:
    """Deployments of the caller's organization within every scope dimension of its token."""
    rows = models.Deployment.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.resource_ids:
        rows = rows.filter(resource_id__in=list(actor.resource_ids))
    if actor.server_ids:
        rows = rows.filter(server_id__in=list(actor.server_ids))
    return rows


def _filtered(actor: Principal, f: Filters) -> QuerySet[models.Deployment]:
    rows = visible(actor)
    if f.project_id:
        rows = rows.filter(project_id=f.project_id)
    if f.resource_id:
        rows = rows.filter(resource_id=f.resource_id)
    if f.server_id:
        rows = rows.filter(server_id=f.server_id)
    if f.statuses:
        rows = rows.filter(status__in=sorted(f.statuses))
    if not f.include_archived:
        rows = rows.filter(archived_at__isnull=True)
    return rows


async def newest(actor: Principal, f: Filters, limit: int) -> list[models.Deployment]:
    """The newest ``limit`` visible deployments matching ``f``."""
    return await _filtered(actor, f).order_by("-created_at", "-id").limit(limit)


async def count(actor: Principal, f: Filters) -> int:
    """How many visible deployments match ``f``."""
    return await _filtered(actor, f).count()


async def context(row: models.Deployment) -> Context:
    """The project, environment, resource and server the deployment was made for."""
    return Context(
        project=await models.Project.get_or_none(id=row.project_id),
        environment=await models.Environment.get_or_none(id=row.environment_id),
        resource=await models.Resource.get_or_none(id=row.resource_id),
        server=await models.Server.get_or_none(id=row.server_id),
    )


async def last_error_line(deployment_id: str) -> models.DeploymentLog | None:
    """The latest error-level log line of a deployment."""
    return (
        await models.DeploymentLog.filter(deployment_id=deployment_id, level="error")
        .order_by("-sequence")
        .first()
    )


async def log_lines(deployment_id: str, limit: int) -> list[models.DeploymentLog]:
    """The first ``limit`` stored log lines, in order."""
    return (
        await models.DeploymentLog.filter(deployment_id=deployment_id)
        .order_by("sequence")
        .limit(limit)
    )


async def events_after(
    deployment_id: str, sequence: int, limit: int
) -> list[models.DeploymentEvent]:
    """Up to ``limit`` timeline events after ``sequence``, in order."""
    return (
        await models.DeploymentEvent.filter(deployment_id=deployment_id, sequence__gt=sequence)
        .order_by("sequence")
        .limit(limit)
    )


async def latest_visible(actor: Principal, resource_id: str) -> models.Deployment | None:
    """The resource's newest deployment the caller may see."""
    return (
        await visible(actor).filter(resource_id=resource_id).order_by("-created_at", "-id").first()
    )


async def latest_of_resource(resource_id: str) -> models.Deployment | None:
    """The resource's newest deployment (the caller already may see the resource)."""
    return (
        await models.Deployment.filter(resource_id=resource_id)
        .order_by("-created_at", "-id")
        .first()
    )


async def all_of_resource(resource_id: str) -> list[models.Deployment]:
    """Every deployment of the resource, newest first."""
    return await models.Deployment.filter(resource_id=resource_id).order_by("-created_at", "-id")


async def rollback_candidates(row: models.Deployment) -> list[models.Deployment]:
    """The resource's 20 latest other succeeded deployments, newest first."""
    return (
        await models.Deployment.filter(
            resource_id=row.resource_id, status="succeeded", id__not=row.id
        )
        .order_by("-finished_at", "-id")
        .limit(20)
    )


async def running(resource_id: str) -> models.Deployment | None:
    """The resource's oldest deployment still in flight, if any."""
    return (
        await models.Deployment.filter(resource_id=resource_id, status__in=list(ACTIVE))
        .order_by("created_at", "id")
        .first()
    )


def statuses(single: str | None, many: Iterable[str] | None) -> frozenset[str]:
    """The union of a ``status`` and a ``statuses`` filter."""
    return frozenset(many or ()) | ({single} if single else frozenset())
