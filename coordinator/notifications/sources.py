"""Where events come from: deployment outcomes, task run outcomes, agents going offline,
threshold state changes.

Each source turns what another capability tells it into an ``Event`` and publishes it; none of
them changes how that capability works. A new source (task runs, backups, certificates) adds a
function here or calls ``Publisher.publish`` from its own package.
"""

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from coordinator.db import models
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.notifications.events import Event, Publisher
from coordinator.scheduling import failures
from shared.messages import Hello

logger = logging.getLogger(__name__)

_OUTCOMES = {"succeeded": "deployment.succeeded", "failed": "deployment.failed"}


async def deployment_event(deployment_id: str, status: str) -> Event | None:
    """The event of a deployment that reached ``status`` (None for outcomes not notified)."""
    event_type = _OUTCOMES.get(status)
    if event_type is None:
        return None
    row = await models.Deployment.get_or_none(id=deployment_id)
    if row is None:
        return None
    names: list[Any] = await models.Resource.filter(id=row.resource_id).values_list(
        "name", flat=True
    )
    resource = str(names[0]) if names else row.resource_id
    if status == "succeeded":
        summary = f"deployment {row.id} of {resource} succeeded"
    else:
        summary = (
            f"deployment {row.id} of {resource} failed: {row.error_message or 'no reason given'}"
        )
    return Event(
        event_type=event_type,
        event_id=f"{event_type}:{row.id}",
        organization_id=row.organization_id,
        summary=summary,
        subject={
            "projectId": row.project_id,
            "environmentId": row.environment_id,
            "resourceId": row.resource_id,
            "serverId": row.server_id,
            "deploymentId": row.id,
        },
        data={
            "status": status,
            "resourceName": resource,
            "triggerKind": row.trigger_kind,
            "errorCode": row.error_code,
            "errorMessage": row.error_message,
            "finishedAt": row.finished_at.isoformat() if row.finished_at else None,
        },
    )


async def task_run_events(run_id: str, ended: str | None) -> list[Event]:
    """The events of a task run that ended (``ended``: how the agent saw it end, None when the
    coordinator settled it); a run stopped on purpose (replaced, canceled) says nothing."""
    run = await ScheduledTaskRun.get_or_none(id=run_id)
    if run is None or run.status not in ("succeeded", "failed") or ended == "stopped":
        return []
    names: list[Any] = await models.Resource.filter(id=run.resource_id).values_list(
        "name", flat=True
    )
    resource = str(names[0]) if names else run.resource_id
    commands: list[Any] = await ScheduledTask.filter(id=run.task_id).values_list(
        "command_intent", flat=True
    )
    types = [f"scheduled-task-run.{run.status}"]
    if ended == "timed-out":
        types.append("scheduled-task-run.timed-out")
    if run.status == "succeeded":
        summary = f"task run {run.id} of {resource} succeeded"
    else:
        summary = f"task run {run.id} of {resource} failed: {run.failure_summary or 'no reason'}"
    return [
        Event(
            event_type=event_type,
            event_id=f"{event_type}:{run.id}",
            organization_id=run.organization_id,
            summary=summary,
            subject={
                "projectId": run.project_id,
                "environmentId": run.environment_id,
                "resourceId": run.resource_id,
                "serverId": run.server_id,
                "deploymentId": run.deployment_id,
                "taskId": run.task_id,
                "runId": run.id,
            },
            data={
                "status": run.status,
                "ended": ended,
                "resourceName": resource,
                "commandIntent": str(commands[0])[:200] if commands else None,
                "triggerKind": run.trigger_kind,
                "attempt": run.attempt,
                "exitCode": run.exit_code,
                "failureSummary": run.failure_summary,
                "failureCode": failures.of_run(run),
                "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
            },
        )
        for event_type in types
    ]


async def _organization_of_scope(kind: str, scope_id: str) -> str | None:
    if kind == "server":
        found: list[Any] = await models.Server.filter(id=scope_id).values_list(
            "organization_id", flat=True
        )
    elif kind == "project":
        found = await models.Project.filter(id=scope_id).values_list("organization_id", flat=True)
    elif kind == "environment":
        found = await models.Environment.filter(id=scope_id).values_list(
            "project__organization_id", flat=True
        )
    elif kind == "resource":
        found = await models.Resource.filter(id=scope_id).values_list(
            "project__organization_id", flat=True
        )
    else:
        found = await models.Deployment.filter(id=scope_id).values_list(
            "organization_id", flat=True
        )
    return str(found[0]) if found else None


class EventSources:
    """Hooks on the deployment store, the agent registry and the threshold evaluator; owns the
    short tasks that publish from synchronous callbacks."""

    def __init__(self, publisher: Publisher, registry: Registry, offline_grace_seconds: float):
        self.publisher = publisher
        self.registry = registry
        self.offline_grace_seconds = offline_grace_seconds
        self._tasks: asyncio.TaskGroup | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def attach(self, tasks: asyncio.TaskGroup | None) -> None:
        """Start (a TaskGroup) or stop (None: pending checks are canceled) spawning."""
        self._tasks = tasks
        if tasks is None:
            for task in list(self._pending):
                task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._tasks is None:
            work.close()
            return
        task = self._tasks.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ---- deployments (DeploymentStore.outcome_hooks) ---------------------------------------

    async def on_deployment_outcome(self, deployment_id: str, status: str) -> None:
        """A deployment reached a terminal status."""
        event = await deployment_event(deployment_id, status)
        if event is not None:
            await self.publisher.publish_quietly(event)

    # ---- task runs (TaskScheduler.outcome_hooks) -------------------------------------------

    async def on_task_run_outcome(self, run_id: str, ended: str | None) -> None:
        """A task run ended succeeded or failed."""
        for event in await task_run_events(run_id, ended):
            await self.publisher.publish_quietly(event)

    # ---- agents (a LinkListener that consumes no frames) -----------------------------------

    message_types: frozenset[str] = frozenset()

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Nothing: only a link that stays down is news."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Never called (no frame types)."""

    def on_disconnected(self, session: AgentSession) -> None:
        """Publish ``server.offline`` if the agent is still away after the grace period (a
        reconnect within it, the usual case after a network blip, says nothing)."""
        self._spawn(self._offline_after_grace(session.server_id, time.time()))

    async def _offline_after_grace(self, server_id: str, since: float) -> None:
        await asyncio.sleep(self.offline_grace_seconds)
        if self.registry.get(server_id) is not None:
            return
        rows: list[Any] = await models.Server.filter(id=server_id).values_list(
            "organization_id", "name"
        )
        if not rows:
            return
        organization_id, name = rows[0]
        await self.publisher.publish_quietly(
            Event(
                event_type="server.offline",
                event_id=f"server.offline:{server_id}:{int(since * 1000)}",
                organization_id=str(organization_id),
                summary=f"server {name} ({server_id}) has been offline for "
                f"{self.offline_grace_seconds:.0f} s",
                subject={"serverId": server_id},
                data={"serverName": name, "graceSeconds": self.offline_grace_seconds},
            )
        )

    # ---- thresholds (ThresholdEvaluator.state_observers) -----------------------------------

    def on_threshold_state(self, change: dict[str, Any]) -> None:
        """A threshold policy changed state (called inside the evaluator's pass: no waiting)."""
        self._spawn(self._publish_threshold(change))

    async def _publish_threshold(self, change: dict[str, Any]) -> None:
        organization_id = await _organization_of_scope(change["scopeKind"], change["scopeId"])
        if organization_id is None:
            return
        kind, scope_id = change["scopeKind"], change["scopeId"]
        await self.publisher.publish_quietly(
            Event(
                event_type="runtime-monitoring.threshold-state-changed",
                event_id=f"threshold:{change['policyId']}:{change['sampleId']}",
                organization_id=organization_id,
                summary=f"{kind} {scope_id} thresholds moved from {change['previousState']} "
                f"to {change['state']}",
                subject={f"{kind}Id": scope_id},
                data=change,
            )
        )
