"""Deployment read routes: items, count, show, logs, events and the SSE stream."""

from datetime import UTC, datetime

from aiohttp import web

from coordinator.api.deployment_recovery import recovery
from coordinator.api.deployment_schemas import (
    CountDeploymentsQuery,
    DeploymentEventBody,
    DeploymentEvents,
    DeploymentItem,
    DeploymentList,
    DeploymentLogs,
    DeploymentShowResponse,
    EventEnvelope,
    EventsQuery,
    LatestFailure,
    ListDeploymentsQuery,
    LogLine,
    RecoverySummary,
    RelatedContext,
    SnapshotSection,
    StatusSection,
    StreamQuery,
    TimelineSection,
)
from coordinator.api.deployment_views import (
    EnvironmentRef,
    ProjectRef,
    ResourceRef,
    ServerRef,
    bindings_section,
    deployment_bindings,
    plan_view,
    snapshot_view,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import CountResponse, NoQuery
from coordinator.db import models
from coordinator.deployments import (
    engine_of,
    reads,
)
from coordinator.deployments.store import (
    ACTIVE,
    TERMINAL,
)
from coordinator.deployments.stream import parse_cursor, stream_events
from coordinator.lookup import get_deployment

TAG = "deployments"


def deployment_item(row: models.Deployment) -> DeploymentItem:
    """The API view of a deployment (snapshot secrets masked)."""
    return DeploymentItem(
        id=row.id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        resource_id=row.resource_id,
        server_id=row.server_id,
        destination_id=None,
        status=row.status,  # type: ignore[arg-type]
        trigger_kind=row.trigger_kind,
        source_deployment_id=row.source_deployment_id,
        rollback_candidate_deployment_id=row.rollback_candidate_deployment_id,
        rollback_of_deployment_id=row.rollback_of_deployment_id,
        runtime_plan=plan_view(row),
        environment_snapshot=snapshot_view(row),
        artifact=row.artifact,
        error_code=row.error_code,
        error_message=row.error_message,
        log_count=row.log_count,
        event_count=row.event_count,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        archived_at=row.archived_at,
        dependency_binding_references=deployment_bindings(row),
    )


def envelope(row: models.DeploymentEvent) -> EventEnvelope:
    """A timeline event as a ``deployments.stream-events/v1`` envelope."""
    return EventEnvelope(
        event=DeploymentEventBody(
            deployment_id=row.deployment_id,
            sequence=row.sequence,
            cursor=str(row.sequence),
            emitted_at=row.emitted_at,
            source=row.source,
            event_type=row.event_type,
            phase=row.phase,
            status=row.status,
            retriable=row.retriable,
            summary=row.summary,
        )
    )


def _filters(q: ListDeploymentsQuery | CountDeploymentsQuery) -> reads.Filters:
    return reads.Filters(
        project_id=q.project_id,
        resource_id=q.resource_id,
        server_id=q.server_id,
        statuses=reads.statuses(q.status, q.statuses),
        include_archived=q.include_archived,
    )


@route(
    "GET",
    "/deployments",
    summary="List deployments, newest first",
    tag=TAG,
    permission="deployments:read",
    query=ListDeploymentsQuery,
    response=DeploymentList,
)
async def list_deployments(call: Call) -> DeploymentList:
    """Filter by project, resource, server and status(es)."""
    q = call.query(ListDeploymentsQuery)
    rows = await reads.newest(call.actor, _filters(q), q.limit)
    return DeploymentList(items=[deployment_item(r) for r in rows])


@route(
    "GET",
    "/deployments/count",
    summary="Count deployments",
    tag=TAG,
    permission="deployments:read",
    query=CountDeploymentsQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """Same filters as the list."""
    return CountResponse(
        count=await reads.count(call.actor, _filters(call.query(CountDeploymentsQuery)))
    )


@route(
    "GET",
    "/deployments/{deploymentId}",
    summary="Show a deployment with context, snapshot, failure and recovery summary",
    tag=TAG,
    permission="deployments:read",
    query=NoQuery,
    response=DeploymentShowResponse,
)
async def show(call: Call) -> DeploymentShowResponse:
    """``deployments.show/v1``."""
    row = await get_deployment(call.actor, call.path["deploymentId"])
    found = await reads.context(row)
    project, environment, resource, server = (
        found.project,
        found.environment,
        found.resource,
        found.server,
    )
    failure: LatestFailure | None = None
    if row.status == "failed":
        line = await reads.last_error_line(row.id)
        failure = LatestFailure(
            timestamp=line.timestamp if line else (row.finished_at or row.created_at),
            source=line.source if line else "berth",
            phase=line.phase if line else "reconcile",
            level="error",
            message=row.error_message or (line.message if line else "deployment failed"),
            code=row.error_code,
        )
    ready = await recovery(row)
    actions = ["logs", "events"]
    if row.status in ACTIVE:
        actions.append("cancel")
    if ready.retryable:
        actions.append("retry")
    if ready.rollback_ready:
        actions.append("rollback")
    return DeploymentShowResponse(
        deployment=deployment_item(row),
        status=StatusSection(
            current=row.status,  # type: ignore[arg-type]
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            rollback_of_deployment_id=row.rollback_of_deployment_id,
        ),
        related_context=RelatedContext(
            project=(
                ProjectRef(id=project.id, name=project.name, slug=project.slug)
                if project
                else ProjectRef(id=row.project_id, deleted=True)
            ),
            environment=(
                EnvironmentRef(id=environment.id, name=environment.name, kind=environment.kind)
                if environment
                else EnvironmentRef(id=row.environment_id, deleted=True)
            ),
            resource=(
                ResourceRef(
                    id=resource.id, name=resource.name, slug=resource.slug, kind=resource.kind
                )
                if resource
                else ResourceRef(id=row.resource_id, deleted=True)
            ),
            server=(
                ServerRef(
                    id=server.id,
                    name=server.name,
                    host=server.host,
                    port=server.port,
                    provider_key=server.provider_key,
                )
                if server
                else ServerRef(id=row.server_id, deleted=True)
            ),
        ),
        snapshot=SnapshotSection(
            runtime_plan=plan_view(row),
            environment_snapshot=snapshot_view(row),
            dependency_bindings=bindings_section(deployment_bindings(row)),
        ),
        timeline=TimelineSection(
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            log_count=row.log_count,
            event_count=row.event_count,
        ),
        latest_failure=failure,
        recovery_summary=RecoverySummary(
            retryable=ready.retryable,
            redeployable=ready.redeployable,
            rollback_ready=ready.rollback_ready,
            rollback_candidate_count=ready.rollback_candidate_count,
            blocked_reason_codes=[r.code for r in ready.retry.reasons if r.category == "blocked"],
        ),
        next_actions=actions,
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/deployments/{deploymentId}/logs",
    summary="Deployment log lines (secrets masked)",
    tag=TAG,
    permission="deployments:read",
    query=NoQuery,
    response=DeploymentLogs,
)
async def logs(call: Call) -> DeploymentLogs:
    """Every stored line, in order."""
    row = await get_deployment(call.actor, call.path["deploymentId"])
    lines = await reads.log_lines(row.id, 10000)
    return DeploymentLogs(
        deployment_id=row.id,
        logs=[
            LogLine(
                sequence=ln.sequence,
                timestamp=ln.timestamp,
                source=ln.source,
                phase=ln.phase,
                level=ln.level,
                message=ln.message,
                masked=ln.masked,
                stream=ln.stream,
            )
            for ln in lines
        ],
    )


@route(
    "GET",
    "/deployments/{deploymentId}/events",
    summary="Timeline events after a cursor",
    tag=TAG,
    permission="deployments:read",
    query=EventsQuery,
    response=DeploymentEvents,
)
async def events(call: Call) -> DeploymentEvents:
    """``{deploymentId, envelopes}``; pass the last ``cursor`` to get only newer events."""
    q = call.query(EventsQuery)
    row = await get_deployment(call.actor, call.path["deploymentId"])
    found = await reads.events_after(row.id, parse_cursor(q.cursor), q.history_limit)
    return DeploymentEvents(
        deployment_id=row.id,
        envelopes=[envelope(e) for e in found],
        next_cursor=str(found[-1].sequence) if found else q.cursor,
    )


@route(
    "GET",
    "/deployments/{deploymentId}/events/stream",
    summary="Timeline events as server-sent events (resumable, see the stream module)",
    tag=TAG,
    permission="deployments:read",
    query=StreamQuery,
    raw_response="text/event-stream",
    events=("deployment-event", "end"),
)
async def events_stream(call: Call) -> web.StreamResponse:
    """SSE: ``id: <cursor>``, ``event: deployment-event``, ``data: <envelope>``; ``event: end``."""
    q = call.query(StreamQuery)
    row = await get_deployment(call.actor, call.path["deploymentId"])
    resume = q.cursor if q.cursor is not None else call.request.headers.get("Last-Event-ID")
    return await stream_events(
        call.request,
        row.id,
        after=parse_cursor(resume),
        until_terminal=q.until_terminal,
        notifier=engine_of(call).store.notifier,
        envelope=envelope,
        terminal=TERMINAL,
    )
