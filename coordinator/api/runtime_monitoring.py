"""Runtime monitoring routes: stored samples, rollups and on-demand retention prune."""

from coordinator.api.routing import Call, route
from coordinator.appkeys import ROSTER_KEY, SETTINGS_KEY
from coordinator.monitoring.reads import list_samples
from coordinator.monitoring.retention import prune_audited
from coordinator.monitoring.rollup_reads import rollup
from coordinator.monitoring.rollups import roll_up_all
from coordinator.monitoring.schemas import (
    PruneRequest,
    PruneResponse,
    RollupQuery,
    RollupResponse,
    SamplesList,
    SamplesQuery,
)
from coordinator.monitoring.scopes import resolve_scope
from coordinator.monitoring.service import MONITORING_KEY

TAG = "runtime-monitoring"


@route(
    "GET",
    "/runtime-monitoring/samples",
    summary="List stored samples of a scope in a window (no fresh collection)",
    tag=TAG,
    permission="runtime-monitoring:read",
    query=SamplesQuery,
    response=SamplesList,
)
async def samples(call: Call) -> SamplesList:
    """Stored raw samples, newest ``limit`` of the window, oldest first."""
    query = call.query(SamplesQuery)
    service = call.request.app[MONITORING_KEY]
    roster = call.request.app[ROSTER_KEY]
    target = await resolve_scope(
        call.actor, query, allow_all=False, roster=roster, recent=service.scope_servers
    )
    return await list_samples(target, query, call.request.app[SETTINGS_KEY], service.clock)


@route(
    "GET",
    "/runtime-monitoring/rollup",
    summary="Bucketed figures of a scope, with deployment markers and top contributors",
    tag=TAG,
    permission="runtime-monitoring:read",
    query=RollupQuery,
    response=RollupResponse,
)
async def rollups(call: Call) -> RollupResponse:
    """Minute buckets from raw samples; five-minute and hour buckets from rollup rows."""
    query = call.query(RollupQuery)
    service = call.request.app[MONITORING_KEY]
    roster = call.request.app[ROSTER_KEY]
    target = await resolve_scope(
        call.actor, query, allow_all=True, roster=roster, recent=service.scope_servers
    )
    settings = call.request.app[SETTINGS_KEY]
    return await rollup(target, query, settings, service.rollup_lock.read_cache, service.clock)


@route(
    "POST",
    "/runtime-monitoring/prune",
    summary="Dry-run or prune raw samples past retention (rolled-up ones only) and old rollups",
    tag=TAG,
    permission="runtime-monitoring:write",
    body=PruneRequest,
    response=PruneResponse,
)
async def prune_samples(call: Call) -> PruneResponse:
    """Run retention now; a real run first folds pending samples into rollups."""
    body = call.body(PruneRequest)
    settings = call.request.app[SETTINGS_KEY]
    service = call.request.app[MONITORING_KEY]
    if not body.dry_run:
        await roll_up_all(service.rollup_lock)
    outcome = await prune_audited(
        settings, call.actor, call.request_id, dry_run=body.dry_run, before=body.before
    )
    service.after_prune(outcome)  # committed: read caches drop what it deleted
    return PruneResponse(
        dry_run=outcome.dry_run,
        before=outcome.before,
        rollups_before=outcome.rollups_before,
        matched_sample_count=outcome.matched_samples,
        pruned_sample_count=outcome.pruned_samples,
        matched_rollup_count=outcome.matched_rollups,
        pruned_rollup_count=outcome.pruned_rollups,
        pruned_at=outcome.pruned_at,
    )
