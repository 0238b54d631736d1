"""Retention defaults: per organization and category, how many days of history to keep and
whether the scheduled prune only reports (dry run) or removes (destructive).

Categories Berth governs today: ``audit-rows``, ``deployment-logs`` (the deployment history
guards apply) and ``runtime-monitoring-samples`` (raw samples of the organization's servers;
the coordinator-wide raw retention still applies when shorter), and Berth's own
``scheduled-task-run-logs`` (output of finished task runs; task_run_logs.py). The reference's
other categories name history Berth does not keep; they are refused with a 400 saying so.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.monitoring_models import RuntimeSample
from coordinator.db.notification_models import RetentionDefault
from coordinator.ids import new_id
from coordinator.retention import history, task_run_logs
from shared.errors import InvalidRequest, NotFound

GOVERNED: Final = (
    "audit-rows",
    "deployment-logs",
    "runtime-monitoring-samples",
    task_run_logs.CATEGORY,
)
CATEGORIES: Final = (
    "audit-rows",
    "deployment-logs",
    "domain-event-streams",
    "process-attempts",
    "provider-job-logs",
    "resource-runtime-log-archives",
    "runtime-monitoring-samples",
    # Berth's own (not in the reference's enum).
    task_run_logs.CATEGORY,
)


def check_governed(category: str) -> None:
    """400 for a category Berth keeps no history of."""
    if category not in GOVERNED:
        raise InvalidRequest(
            f"Berth keeps no {category} history to govern; governed: {', '.join(GOVERNED)}",
            details={"problems": [{"field": "category", "message": "not governed by Berth"}]},
        )


async def listed(
    actor: Principal, *, category: str | None, enabled_only: bool
) -> list[RetentionDefault]:
    """The organization's policies, by category."""
    query = RetentionDefault.filter(organization_id=actor.organization_id)
    if category:
        query = query.filter(category=category)
    if enabled_only:
        query = query.filter(enabled=True)
    return await query.order_by("category")


async def show(actor: Principal, category: str) -> RetentionDefault:
    """The organization's policy for ``category``, else 404."""
    row = await RetentionDefault.get_or_none(
        organization_id=actor.organization_id, category=category
    )
    if row is None:
        raise NotFound(f"no retention default for {category}")
    return row


async def save(
    actor: Principal, request_id: str, category: str, values: dict[str, Any]
) -> RetentionDefault:
    """Create or replace the organization's policy for ``category`` (audited)."""
    check_governed(category)
    now = datetime.now(UTC)
    fields = {
        **values,
        "updated_at": now,
        "updated_by_actor_id": actor.actor_id,
        "updated_by_actor_kind": actor.kind,
    }
    async with in_transaction():
        row = await RetentionDefault.get_or_none(
            organization_id=actor.organization_id, category=category
        )
        if row is None:
            row = await RetentionDefault.create(
                id=new_id("rtd"),
                scope="organization",
                organization_id=actor.organization_id,
                category=category,
                **fields,
            )
        else:
            await RetentionDefault.filter(id=row.id).update(**fields)
            row = await RetentionDefault.get(id=row.id)
        await audit.record(
            actor=actor,
            event_type="retention-defaults.configured",
            aggregate_type="retention-default",
            aggregate_id=row.id,
            payload={"category": category, **values},
            request_id=request_id,
        )
    return row


async def apply(row: RetentionDefault, *, dry_run: bool) -> dict[str, Any]:
    """Prune ``row``'s category past its retention (or count what would go); the report."""
    before = datetime.now(UTC) - timedelta(days=row.retention_days)
    report: dict[str, Any] = {
        "ranAt": datetime.now(UTC).isoformat(),
        "dryRun": dry_run,
        "before": before.isoformat(),
    }
    if row.category == "audit-rows":
        query = models.AuditEvent.filter(
            organization_id=row.organization_id, occurred_at__lt=before
        )
        matched = await query.count()
        pruned = 0 if dry_run else int(await query.delete())
    elif row.category == "deployment-logs":
        selection = await history.select(history.Filters(row.organization_id, before))
        matched = sum((await history.log_counts(selection.removable)).values())
        pruned = 0 if dry_run else await history.prune_logs(selection.removable, dry_run=False)
        report["guardedDeploymentCount"] = len(selection.guarded)
    elif row.category == task_run_logs.CATEGORY:
        matched, pruned = await task_run_logs.prune(row.organization_id, before, dry_run=dry_run)
    else:
        servers: list[Any] = await models.Server.filter(
            organization_id=row.organization_id
        ).values_list("id", flat=True)
        query_samples = RuntimeSample.filter(server_id__in=list(servers), observed_at__lt=before)
        matched = await query_samples.count() if servers else 0
        pruned = 0 if dry_run or not servers else int(await query_samples.delete())
    report.update(matchedCount=matched, prunedCount=pruned)
    await RetentionDefault.filter(id=row.id).update(last_run=report)
    if not dry_run and pruned:
        await audit.record(
            actor=None,
            event_type="retention-defaults.pruned",
            aggregate_type="retention-default",
            aggregate_id=row.id,
            payload={"category": row.category, "prunedCount": pruned, "before": report["before"]},
            organization_id=row.organization_id,
        )
    return report
