"""The durable scheduler: one coordinator task that records due slots, dispatches accepted runs
to the resource's agent, stops replaced runs, and stores what agents report.

Everything it acts on is in the database (next slot per task, runs with their status), so a
restart picks up where it left off; it waits on an event with a timeout between ticks, so it
wakes for run-now at once and is cancelled cleanly at shutdown.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.deployments.engine import planned_mounts, planned_networks
from coordinator.deployments.store import reveal_snapshot
from coordinator.deployments.stream import Notifier
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.logstream.masking import LineMasker
from coordinator.scheduling import runs, slots
from coordinator.scheduling.cron import next_slot
from coordinator.scheduling.definitions import latest_deployment
from coordinator.scheduling.lookahead import SlotLookahead
from coordinator.secrets import Keyring
from shared.errors import PlatformError
from shared.messages import UNSTAMPED, Hello
from shared.messages.tasks import (
    TASKS_DATA_CAPABILITY,
    TASKS_EXEC_CAPABILITY,
    TaskContainer,
    TaskRunEnd,
    TaskRunFailureCode,
    TaskRunInventory,
    TaskRunOutput,
    TaskRunResult,
    TaskRunResultAck,
    TaskRunStart,
    TaskRunStarted,
    TaskRunStop,
    TasksAgentMessage,
)
from shared.messages.typeset import unsolicited_types

logger = logging.getLogger(__name__)

_REQUEST_SECONDS: Final = 10.0
_BATCH: Final = 1000
_MAX_CATCH_UP_STEPS: Final = 100_000
# A run whose deployment has volumes or dependency networks, for an agent that cannot give
# them to the run's container (it would run the command without the resource's data).
DATA_UNSUPPORTED: Final = "agent-task-data-unsupported"
# An exec run for an agent that would start a fresh container instead.
EXEC_UNSUPPORTED: Final = "agent-task-exec-unsupported"

Clock = Callable[[], datetime]
OutcomeHook = Callable[[str, TaskRunEnd | None], Awaitable[None]]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class TaskScheduler:
    """Fires slots, dispatches runs, and listens to the agents' task-run frames.

    ``clock``, ``tick_seconds``, ``missed_after`` and ``retry_base_seconds`` are attributes so
    tests can drive time (a test clock and ``tick()``) instead of sleeping for minutes.
    """

    def __init__(self, registry: Registry, keyring: Keyring) -> None:
        self.registry = registry
        self.keyring = keyring
        self.clock: Clock = system_clock
        self.tick_seconds = 1.0
        # A slot found due later than this is "missed" (the coordinator was down): the task's
        # missed-run policy decides; an accepted run waiting this long for an offline agent
        # is skipped under the ``skip`` policy.
        self.missed_after = timedelta(seconds=60)
        self.retry_base_seconds = 10.0
        self._wake = asyncio.Event()
        self._stops_sent: set[str] = set()
        self._maskers: dict[str, LineMasker] = {}
        self._lock = asyncio.Lock()
        self._lookahead = SlotLookahead()
        # Plan the soonest slot a few seconds ahead (off only to measure the difference).
        self.plan_ahead = True
        # What each connected agent said it can do (``hello.capabilities``).
        self._capabilities: dict[str, frozenset[str]] = {}
        # Wakes the followers of a run's log stream when its output or result arrives.
        self.log_notifier = Notifier()
        # Called once per run that ends succeeded or failed (notifications subscribe here).
        self.outcome_hooks: list[OutcomeHook] = []

    # ---- lifecycle ------------------------------------------------------------------------

    async def running(self) -> AsyncIterator[None]:
        """Run the loop for the app's lifetime (an aiohttp cleanup context)."""
        loop = asyncio.get_running_loop().create_task(self._loop())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    def wake(self) -> None:
        """Tick now (a run was accepted, or a result came in)."""
        self._wake.set()

    async def run_now(
        self, actor: Principal, task: ScheduledTask, request_id: str
    ) -> ScheduledTaskRun:
        """Accept one manual run of ``task`` on this scheduler's clock and tick for it now."""
        run = await runs.run_now(actor, task, request_id, self.clock())
        self.wake()
        return run

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduler tick failed")
            # The delay is awaited before the wait coroutine exists: a cancel during the
            # query must not leave an un-awaited Event.wait behind.
            delay = await self._until_next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()

    async def _until_next(self) -> float:
        # Sleep one tick, or less when a slot comes sooner, so slots fire on time rather
        # than up to a tick late.
        try:
            soonest: object = (
                await ScheduledTask.filter(
                    status="enabled", ad_hoc=False, next_slot_at__not_isnull=True
                )
                .order_by("next_slot_at")
                .first()
                .values_list("next_slot_at", flat=True)
            )
        except Exception:
            logger.exception("reading the next slot failed")
            return self.tick_seconds
        if not isinstance(soonest, datetime):
            return self.tick_seconds
        soonest = soonest.astimezone(UTC)
        if self.plan_ahead and self._lookahead.wants(soonest, self.clock()):
            try:
                planned = await self._lookahead.prepare(soonest, self.clock(), self._plan)
                logger.debug("planned %d runs of the slot %s ahead", planned, soonest)
            except Exception:
                logger.exception("planning the next slot ahead failed (it fires unplanned)")
        wait = (soonest - self.clock()).total_seconds() + 0.005
        return min(self.tick_seconds, max(0.0, wait))

    async def tick(self) -> None:
        """One pass: fire due slots, stop replaced runs, dispatch what may start."""
        async with self._lock:
            now = self.clock()
            await self._fire_due(now)
            await self._stop_requested(now)
            await self._dispatch(now)

    # ---- slots ----------------------------------------------------------------------------

    async def _fire_due(self, now: datetime) -> None:
        planned = await self._lookahead.take(now, self.missed_after)
        if planned is not None:
            _, ahead = planned
            for start in range(0, len(ahead), _BATCH):
                # Stamped when recorded, so the run's createdAt shows how late its slot fired.
                _ = await slots.record_slots(ahead[start : start + _BATCH], max(now, self.clock()))
        # What was not planned ahead (changed or added since, or found late) is read now.
        while True:
            due = await slots.due_tasks(now, _BATCH)
            if not due:
                return
            active = await slots.busy_tasks([task.id for task in due])
            plans: list[slots.SlotPlan] = []
            for task in due:
                try:
                    plans.append(self._plan(task, now, task.id in active))
                except PlatformError as exc:
                    logger.warning("task %s cannot be scheduled: %s", task.id, exc.message)
                    await ScheduledTask.filter(id=task.id).update(next_slot_at=None)
            # Stamped when recorded, so the run's createdAt shows how late its slot fired.
            _ = await slots.record_slots(plans, max(now, self.clock()))
            if len(due) < _BATCH:
                return

    def _plan(self, task: slots.DueTask, now: datetime, busy: bool) -> slots.SlotPlan:
        slot = task.next_slot_at or now
        reason: str | None = None
        if now - slot > self.missed_after:
            # Down through one or more slots: only the latest one counts.
            for _ in range(_MAX_CATCH_UP_STEPS):
                following = next_slot(task.schedule, task.timezone, slot)
                if following > now:
                    break
                slot = following
            if task.missed_run_policy == "skip":
                reason = "missed-while-down"
        if reason is None and busy and task.concurrency_policy == "forbid":
            reason = "concurrency-forbidden"
        return slots.SlotPlan(
            task=task,
            slot_at=slot,
            following=next_slot(task.schedule, task.timezone, max(now, slot)),
            skipped_reason=reason,
            replaces_active=reason is None and busy and task.concurrency_policy == "replace",
        )

    # ---- stops ----------------------------------------------------------------------------

    async def _stop_requested(self, now: datetime) -> None:
        stopping = await ScheduledTaskRun.filter(
            status__in=runs.ACTIVE, stop_requested_at__not_isnull=True
        ).limit(_BATCH)
        for run in stopping:
            if run.dispatched_at is None:
                await ScheduledTaskRun.filter(id=run.id, dispatched_at=None).update(
                    status="failed",
                    finished_at=now,
                    failure_summary="stopped before it started (replaced, or its task deleted)",
                    failure_code="stopped",
                )
                continue
            if run.id in self._stops_sent or run.server_id is None:
                continue
            session = self.registry.get(run.server_id)
            if session is None:
                continue
            self._stops_sent.add(run.id)
            stop = _stop_frame(run.id)
            try:
                _ = await session.request(stop, _REQUEST_SECONDS)
            except PlatformError as exc:
                self._stops_sent.discard(run.id)
                logger.info("could not stop task run %s yet: %s", run.id, exc.message)

    # ---- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, now: datetime) -> None:
        pending = (
            await ScheduledTaskRun.filter(
                status="accepted",
                dispatched_at=None,
                stop_requested_at=None,
                not_before__lte=now,
            )
            .order_by("id")
            .limit(_BATCH)
        )
        if not pending:
            return
        found = await ScheduledTask.filter(id__in={run.task_id for run in pending})
        tasks = {task.id: task for task in found}
        # One look-up per resource per tick, however many of its runs wait.
        deployments: dict[str, models.Deployment | None] = {}
        for run in pending:
            if run.resource_id not in deployments:
                deployments[run.resource_id] = await latest_deployment(run.resource_id)
            await self._dispatch_one(run, tasks.get(run.task_id), deployments[run.resource_id], now)

    async def _dispatch_one(
        self,
        run: ScheduledTaskRun,
        task: ScheduledTask | None,
        deployment: models.Deployment | None,
        now: datetime,
    ) -> None:
        if task is None:
            await self._settle(
                run, "failed", now, failure="its task was deleted before it started", code="stopped"
            )
            return
        if deployment is None:
            await self._settle(run, "skipped", now, reason="no-deployment")
            return
        session = self.registry.get(deployment.server_id)
        if session is None:
            if task.missed_run_policy == "skip" and now - run.not_before > self.missed_after:
                await self._settle(run, "skipped", now, reason="agent-offline")
            return  # dispatched when the agent is back
        capabilities = self._capabilities.get(deployment.server_id)
        if capabilities is None:
            return  # its hello is not processed yet: dispatched on the tick after it
        # What the deployment ran with, not the resource's configuration now: the run sees
        # the volumes and dependency networks of the version that serves.
        plan: dict[str, Any] = deployment.runtime_plan or {}
        meta: dict[str, Any] = (plan.get("execution") or {}).get("metadata") or {}
        networks, mounts = planned_networks(meta), planned_mounts(meta)
        exec_mode = task.execution_mode == "exec"
        if exec_mode and TASKS_EXEC_CAPABILITY not in capabilities:
            await self._settle(
                run,
                "failed",
                now,
                failure=f"{EXEC_UNSUPPORTED}: the server's agent cannot exec task runs in the "
                "resource's running container: upgrade it",
                code="agent-unsupported",
            )
            return
        if exec_mode:
            # The running container already has its volumes and networks.
            networks, mounts = [], []
        if (networks or mounts) and TASKS_DATA_CAPABILITY not in capabilities:
            await self._settle(
                run,
                "failed",
                now,
                failure=f"{DATA_UNSUPPORTED}: the server's agent cannot give task runs the "
                "resource's volumes and dependency networks: upgrade it",
                code="agent-unsupported",
            )
            return
        revealed = reveal_snapshot(
            self.keyring, deployment.id, deployment.environment_snapshot or {}
        )
        runtime_vars = [v for v in revealed if v.get("exposure") == "runtime"]
        secrets = [str(v["value"]) for v in runtime_vars if v.get("isSecret")]
        self._maskers[run.id] = LineMasker(secrets)
        artifact: dict[str, Any] = deployment.artifact or {}
        container = TaskContainer(
            image=str(artifact["image"]),
            command=task.command_intent,
            environment={str(v["key"]): str(v["value"]) for v in runtime_vars},
            secret_keys=[str(v["key"]) for v in runtime_vars if v.get("isSecret")],
            networks=networks,
            mounts=mounts,
        )
        await ScheduledTaskRun.filter(id=run.id).update(
            server_id=deployment.server_id, deployment_id=deployment.id, dispatched_at=now
        )
        try:
            _ = await session.request(
                lambda mid: TaskRunStart(
                    id=mid,
                    run_id=run.id,
                    task_id=run.task_id,
                    resource_id=run.resource_id,
                    deployment_id=deployment.id,
                    timeout_seconds=task.timeout_seconds,
                    container=container,
                    execution_mode="exec" if exec_mode else "fresh-container",
                ),
                _REQUEST_SECONDS,
            )
        except PlatformError as exc:
            # Not handed over (link closed, no answer): sent again on a later tick; a resend
            # of a start the agent did get is answered ``alreadyKnown``.
            logger.info("task run %s not dispatched yet: %s", run.id, exc.message)
            await ScheduledTaskRun.filter(id=run.id, status="accepted").update(dispatched_at=None)

    # ---- the agents' frames (LinkListener) --------------------------------------------------

    @property
    def message_types(self) -> frozenset[str]:
        """``task_run_started``, ``task_run_output``, ``task_run_result``,
        ``task_run_inventory``."""
        return unsolicited_types(TasksAgentMessage)

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Runs waiting for this agent go out on the next tick."""
        self._capabilities[session.server_id] = frozenset(hello.capabilities)
        self.wake()

    def on_disconnected(self, session: AgentSession) -> None:
        """Stops not acknowledged are sent again on the next link."""
        self._stops_sent.clear()

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Store a run's start, output or result; settle runs the agent lost."""
        server_id = session.server_id
        if isinstance(message, TaskRunStarted):
            await runs.mark_started(message.run_id, server_id, message.started_at)
        elif isinstance(message, TaskRunOutput):
            texts = [line.message for line in message.lines]
            hidden = (await self._masker(message.run_id)).mask_all(texts)
            shown = [text for text, _ in hidden] if hidden else texts
            await runs.add_output(message.run_id, server_id, list(message.lines), shown)
        elif isinstance(message, TaskRunResult):
            done = await runs.finish(server_id, message, self.retry_base_seconds, self.clock())
            self._maskers.pop(message.run_id, None)
            self._stops_sent.discard(message.run_id)
            await session.send(TaskRunResultAck(id=UNSTAMPED, run_id=message.run_id))
            if done.stored:
                await self._ended(message.run_id, message.ended)
            if done.retry is not None:
                self.wake()
        elif isinstance(message, TaskRunInventory):
            await self._settle_lost(session, set(message.run_ids))
            return
        self.log_notifier.notify(message.run_id)

    async def _masker(self, run_id: str) -> LineMasker:
        masker = self._maskers.get(run_id)
        if masker is None:
            # After a restart: the run's secrets come from the deployment it ran from.
            run = await ScheduledTaskRun.get_or_none(id=run_id)
            deployment = (
                await models.Deployment.get_or_none(id=run.deployment_id)
                if run is not None and run.deployment_id
                else None
            )
            secrets: list[str] = []
            if deployment is not None:
                revealed = reveal_snapshot(
                    self.keyring, deployment.id, deployment.environment_snapshot or {}
                )
                secrets = [str(v["value"]) for v in revealed if v.get("isSecret")]
            masker = self._maskers[run_id] = LineMasker(secrets)
        return masker

    async def _settle_lost(self, session: AgentSession, known: set[str]) -> None:
        # Dispatched before this link and unknown to the agent: it restarted mid-run.
        candidates = await ScheduledTaskRun.filter(
            server_id=session.server_id,
            status__in=runs.ACTIVE,
            dispatched_at__lt=session.connected_at,
        )
        for run in candidates:
            if run.id not in known:
                await self._settle(
                    run,
                    "failed",
                    datetime.now(UTC),
                    failure="the agent lost the run (it restarted while the run was going)",
                    code="agent-lost",
                )

    async def _settle(
        self,
        run: ScheduledTaskRun,
        status: str,
        now: datetime,
        *,
        reason: str | None = None,
        failure: str | None = None,
        code: TaskRunFailureCode | None = None,
    ) -> None:
        moved = await ScheduledTaskRun.filter(id=run.id, status__in=runs.ACTIVE).update(
            status=status,
            finished_at=now,
            skipped_reason=reason,
            failure_summary=failure,
            failure_code=code,
        )
        if moved and status == "failed":
            await self._ended(run.id, None)

    async def _ended(self, run_id: str, ended: TaskRunEnd | None) -> None:
        """Tell the outcome hooks a run reached ``succeeded`` or ``failed`` (``ended``: how the
        agent saw it end; None when the coordinator settled it)."""
        for hook in self.outcome_hooks:
            try:
                await hook(run_id, ended)
            except Exception:
                logger.exception("a task-run outcome hook failed for %s", run_id)


def _stop_frame(run_id: str) -> Callable[[int], TaskRunStop]:
    return lambda frame_id: TaskRunStop(id=frame_id, run_id=run_id)
