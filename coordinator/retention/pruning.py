"""The deployment history prunes as commands: select, act (unless a dry run), audit."""

from datetime import UTC, datetime
from typing import Protocol

from coordinator import audit
from coordinator.auth import Principal
from coordinator.lookup import get_deployment, get_resource, get_server
from coordinator.retention import history


class PruneAsk(Protocol):
    """What a prune request carries."""

    @property
    def before(self) -> str: ...
    @property
    def deployment_id(self) -> str | None: ...
    @property
    def resource_id(self) -> str | None: ...
    @property
    def server_id(self) -> str | None: ...
    @property
    def dry_run(self) -> bool: ...


async def _filters(actor: Principal, ask: PruneAsk) -> history.Filters:
    # A filter naming another organization's row is a 404 like any other id, not "0 matched".
    if ask.deployment_id is not None:
        _ = await get_deployment(actor, ask.deployment_id)
    if ask.resource_id is not None:
        _ = await get_resource(actor, ask.resource_id)
    if ask.server_id is not None:
        _ = await get_server(actor, ask.server_id)
    return history.Filters(
        organization_id=actor.organization_id,
        before=datetime.fromisoformat(ask.before.replace("Z", "+00:00")).astimezone(UTC),
        deployment_id=ask.deployment_id,
        resource_id=ask.resource_id,
        server_id=ask.server_id,
    )


async def deployments(
    actor: Principal, request_id: str, ask: PruneAsk
) -> tuple[history.Selection, int]:
    """Select and (unless a dry run) remove deployments; audited when anything went."""
    selection = await history.select(await _filters(actor, ask))
    pruned = await history.prune_deployments(selection, dry_run=ask.dry_run)
    if not ask.dry_run and pruned:
        await audit.record(
            actor=actor,
            event_type="deployments.pruned",
            aggregate_type="deployment-history",
            aggregate_id=None,
            payload={"before": ask.before, "deploymentIds": selection.removable},
            request_id=request_id,
        )
    return selection, 0 if ask.dry_run else pruned


async def logs(
    actor: Principal, request_id: str, ask: PruneAsk
) -> tuple[history.Selection, dict[str, int], int]:
    """Select deployments and (unless a dry run) remove their log lines; audited."""
    selection = await history.select(await _filters(actor, ask))
    counts = await history.log_counts(selection.removable)
    pruned = 0
    if not ask.dry_run and counts:
        pruned = await history.prune_logs(sorted(counts), dry_run=False)
        await audit.record(
            actor=actor,
            event_type="deployments.logs-pruned",
            aggregate_type="deployment-history",
            aggregate_id=None,
            payload={"before": ask.before, "lineCount": pruned, "deploymentIds": sorted(counts)},
            request_id=request_id,
        )
    return selection, counts, pruned
