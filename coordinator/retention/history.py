"""Deployment history prune: old finished deployments and their log lines, never the ones a
resource still needs.

Guarded (never removed, logs kept too): each resource's newest deployment, anything in flight,
the latest ``ROLLBACK_WINDOW`` succeeded deployments of each resource (the rollback candidates
``POST /deployments/{id}/rollback`` offers), and any deployment a guarded one points at as its
rollback candidate or rollback target. One selection function serves the dry run and the real
run, so a dry run reports exactly what the same real run removes.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator.db import models
from coordinator.deployments.store import TERMINAL

ROLLBACK_WINDOW: Final = 21  # the current deployment plus the 20 candidates offered


@dataclass(frozen=True)
class Selection:
    """What a prune would touch: candidates past ``before`` split into removable and guarded."""

    removable: list[str]
    guarded: list[str]


@dataclass(frozen=True)
class Filters:
    """Which deployments a prune looks at."""

    organization_id: str
    before: datetime
    deployment_id: str | None = None
    resource_id: str | None = None
    server_id: str | None = None


async def _guarded(resource_ids: set[str]) -> set[str]:
    guarded: set[str] = set()
    for resource_id in resource_ids:
        rows = (
            await models.Deployment.filter(resource_id=resource_id)
            .order_by("-created_at", "-id")
            .values("id", "status", "rollback_candidate_deployment_id", "rollback_of_deployment_id")
        )
        if rows:
            guarded.add(str(rows[0]["id"]))
        succeeded = 0
        for row in rows:
            if row["status"] not in TERMINAL:
                guarded.add(str(row["id"]))
            elif row["status"] == "succeeded" and succeeded < ROLLBACK_WINDOW:
                succeeded += 1
                guarded.add(str(row["id"]))
        pointed = {
            str(row[key])
            for row in rows
            if str(row["id"]) in guarded
            for key in ("rollback_candidate_deployment_id", "rollback_of_deployment_id")
            if row[key]
        }
        guarded |= pointed
    return guarded


async def select(filters: Filters) -> Selection:
    """Finished deployments created before ``before`` matching the filters, split by guard."""
    query = models.Deployment.filter(
        organization_id=filters.organization_id,
        status__in=sorted(TERMINAL),
        created_at__lt=filters.before,
    )
    if filters.deployment_id:
        query = query.filter(id=filters.deployment_id)
    if filters.resource_id:
        query = query.filter(resource_id=filters.resource_id)
    if filters.server_id:
        query = query.filter(server_id=filters.server_id)
    rows: list[Any] = await query.order_by("created_at", "id").values_list("id", "resource_id")
    guarded = await _guarded({str(r[1]) for r in rows})
    return Selection(
        removable=[str(r[0]) for r in rows if str(r[0]) not in guarded],
        guarded=[str(r[0]) for r in rows if str(r[0]) in guarded],
    )


async def prune_deployments(selection: Selection, *, dry_run: bool) -> int:
    """Remove the removable deployments with their timelines and logs; how many."""
    if dry_run or not selection.removable:
        return len(selection.removable)
    async with in_transaction():
        _ = await models.DeploymentLog.filter(deployment_id__in=selection.removable).delete()
        _ = await models.DeploymentEvent.filter(deployment_id__in=selection.removable).delete()
        removed = await models.Deployment.filter(
            id__in=selection.removable, status__in=sorted(TERMINAL)
        ).delete()
    return int(removed)


async def log_counts(deployment_ids: list[str]) -> dict[str, int]:
    """Log lines per deployment (only deployments that have any)."""
    counts: dict[str, int] = {}
    if not deployment_ids:
        return counts
    rows: list[Any] = await models.DeploymentLog.filter(
        deployment_id__in=deployment_ids
    ).values_list("deployment_id", flat=True)
    for deployment_id in rows:
        counts[str(deployment_id)] = counts.get(str(deployment_id), 0) + 1
    return counts


async def prune_logs(deployment_ids: list[str], *, dry_run: bool) -> int:
    """Remove the log lines of ``deployment_ids`` (the deployments stay); how many lines."""
    if dry_run or not deployment_ids:
        return sum((await log_counts(deployment_ids)).values())
    # log_count stays: it numbers lines, and a number is never reused.
    removed = await models.DeploymentLog.filter(deployment_id__in=deployment_ids).delete()
    return int(removed)
