"""The deployment manager: owns rollouts across links, the journal, replay and reconciliation."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agent.edge_protocol import Edge, domain_routes_label
from agent.journal import Journal, JournalEntry, check_deployment_id
from agent.rollout import (
    ArtifactBuilder,
    DeployLog,
    HealthProbe,
    Rollout,
    RolloutResult,
    http_probe,
)
from agent.runtime import (
    DOMAINS_LABEL,
    HOSTNAMES_LABEL,
    INTERNAL_PORT_LABEL,
    PATH_PREFIX_LABEL,
    ContainerRuntime,
    RuntimeUnavailable,
)
from shared.errors import ErrorBody, ErrorCode, PlatformError, Unavailable
from shared.messages import (
    UNSTAMPED,
    AgentMessage,
    CheckResult,
    DeployLogLine,
    DeployOutcome,
    DeployPlan,
    DeployProgress,
    DeployResult,
    HealthSpec,
    IdSequence,
    Inventory,
    KnownDeployment,
    ManagedContainer,
    ResourceProbe,
    ResourceProbeResult,
    RuntimeControl,
    RuntimeControlResult,
)

logger = logging.getLogger(__name__)

Send = Callable[[AgentMessage], Awaitable[None]]
_BATCH = 500
# Frames are capped at 1 MiB (shared.version.MAX_FRAME_BYTES): keep each batch well below.
_BATCH_BYTES = 256 * 1024
_READY_TIMEOUT_SECONDS = 60.0
ROUTE_CHECK_SECONDS = 30.0


def progress_batches(lines: list[DeployLogLine]) -> list[list[DeployLogLine]]:
    """Split lines into batches under both the message's line limit and the frame size."""
    batches: list[list[DeployLogLine]] = []
    current: list[DeployLogLine] = []
    size = 0
    for line in lines:
        # Escaping can double a message's size in JSON; 200 bytes cover the other fields.
        cost = 2 * len(line.message.encode()) + 200
        if current and (len(current) >= _BATCH or size + cost > _BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(line)
        size += cost
    if current:
        batches.append(current)
    return batches


def _progress(
    deployment_id: str, lines: list[DeployLogLine]
) -> Callable[[IdSequence], AgentMessage]:
    def build(ids: IdSequence) -> AgentMessage:
        return DeployProgress(id=UNSTAMPED, deployment_id=deployment_id, lines=lines)

    return build


def _parse_time(value: str | None) -> datetime | None:
    """A journal timestamp (ISO, written by this agent) as a datetime."""
    return datetime.fromisoformat(value) if value else None


class DeploymentManager:
    """Runs plans in its own task group, so deployments outlive any one websocket link."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        edge: Edge | None,
        state_dir: Path,
        builder: ArtifactBuilder | None = None,
        probe: HealthProbe | None = None,
        bind_mount_roots: tuple[str, ...] = (),
    ) -> None:
        self._probe = probe
        # From the agent's local settings only: what a plan's bind mounts may reach.
        self._bind_mount_roots = bind_mount_roots
        self._runtime = runtime
        self._edge = edge
        self._journal = Journal(state_dir)
        self._builder = builder
        self._entries: dict[str, JournalEntry] = {}
        self._running: dict[str, tuple[asyncio.Task[None], Rollout]] = {}
        self._cancel_requested: set[str] = set()
        self._resource_locks: dict[str, asyncio.Lock] = {}
        self._entry_locks: dict[str, asyncio.Lock] = {}
        self._unsent: dict[str, list[DeployLogLine]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._last_route_problem = ""
        self._route_pending: set[str] = set()
        self._send: Send | None = None
        self._ids: IdSequence | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Reconcile the journal with Docker and Caddy, then host rollouts until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            self._entries = await self._journal.load_all()
            delay = 1.0
            while True:
                try:
                    await self._reconcile()
                    break
                except (PlatformError, RuntimeUnavailable) as exc:
                    # Docker is not up yet: plans wait (and time out) rather than run blind.
                    logger.warning("cannot reconcile deployments yet: %s; retrying", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            since = time.time()
            await self._restore_routes()
            self._ready.set()
            tasks.create_task(self._follow_containers(since))
            while True:
                # Routes follow the engine's events; this slow check only catches a Caddy
                # that restarted with an empty config (and engines that send no events).
                await asyncio.sleep(ROUTE_CHECK_SECONDS)
                await self._restore_routes()

    async def _follow_containers(self, since: float) -> None:
        """Re-route a resource as soon as the engine says one of its containers changed."""
        delay = 1.0
        while True:
            try:
                async for event in self._runtime.container_events(since):
                    delay = 1.0
                    self._route_soon(event.resource_id)
            except PlatformError as exc:
                self._route_problem(exc.message)
            # The stream ended (engine restart): pick up from a little before now, so no
            # change in between is lost (a repeated event only re-checks a route).
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            since = time.time() - delay

    def _route_soon(self, resource_id: str) -> None:
        if self._tasks is None or resource_id in self._route_pending:
            return  # a check of this resource is already queued and will see this change
        self._route_pending.add(resource_id)
        self._tasks.create_task(self._reroute(resource_id))

    async def _reroute(self, resource_id: str) -> None:
        try:
            async with self._resource_lock(resource_id):
                self._route_pending.discard(resource_id)
                await self._route_resource(resource_id)
        except PlatformError as exc:
            self._route_problem(f"cannot route {resource_id}: {exc.message}")
        finally:
            self._route_pending.discard(resource_id)

    async def wait_ready(self) -> None:
        """Wait until startup reconciliation is done."""
        async with asyncio.timeout(_READY_TIMEOUT_SECONDS):
            await self._ready.wait()

    async def _reconcile(self) -> None:
        for entry in list(self._entries.values()):
            if entry.state != "running":
                continue
            # The agent died mid-deployment: settle it from what Docker and Caddy show.
            candidates = [
                c
                for c in await self._runtime.list_managed(entry.resource_id)
                if c.deployment_id == entry.deployment_id
            ]
            serving = await self._serving_ports(entry.resource_id)
            switched = entry.switched or any(c.host_port in serving for c in candidates)
            log = self._log_for(entry)
            if switched and candidates:
                log.line("reconcile", "the agent restarted; the deployment had switched traffic")
                result = RolloutResult(
                    "succeeded", container_ids=[c.container_id for c in candidates]
                )
            else:
                for container in candidates:
                    with contextlib.suppress(PlatformError):
                        await self._runtime.remove(container.container_id)
                    log.line(
                        "reconcile",
                        f"removed candidate {container.name}",
                        event="candidate-removed",
                    )
                result = RolloutResult(
                    "failed",
                    error=ErrorBody(
                        code=ErrorCode.RUNTIME_FAILED,
                        message="the agent restarted during the deployment",
                        retriable=True,
                        details={"reasonCode": "agent-restarted"},
                    ),
                )
            await self._finish(entry, result)

    async def _serving_ports(self, resource_id: str) -> set[int]:
        if self._edge is None:
            return set()
        try:
            upstreams = await self._edge.current_upstreams(resource_id) or []
        except PlatformError as exc:
            logger.warning("cannot read edge routes: %s", exc.message)
            return set()
        ports: set[int] = set()
        for upstream in upstreams:
            _, _, port = upstream.rpartition(":")
            if port.isdigit():
                ports.add(int(port))
        return ports

    async def restore_routes(self) -> None:
        """Route every resource again from what runs (an edge bootstrap asks for this)."""
        await self._restore_routes()

    async def _restore_routes(self) -> None:
        """Caddy may have restarted with an empty config: route each resource again."""
        if self._edge is None:
            return
        try:
            containers = await self._runtime.list_managed()
        except PlatformError as exc:
            self._route_problem(f"cannot list containers to restore routes: {exc.message}")
            return
        for resource_id in sorted({c.resource_id for c in containers}):
            try:
                # Never while a rollout or runtime control of the resource is under way.
                async with self._resource_lock(resource_id):
                    await self._route_resource(resource_id)
            except PlatformError as exc:
                self._route_problem(f"cannot restore the route of {resource_id}: {exc.message}")

    def _route_problem(self, message: str) -> None:
        # The periodic check would repeat the same warning every cycle while Caddy is down.
        level = logging.DEBUG if message == self._last_route_problem else logging.WARNING
        logger.log(level, "%s", message)
        self._last_route_problem = message

    async def _route_resource(self, resource_id: str) -> None:
        """Point the resource's route at its newest deployment's running containers; with
        none running, the route answers "stopped" (503); with no container left, it goes."""
        if self._edge is None:
            return
        containers = await self._runtime.list_managed(resource_id)
        if not containers:
            if await self._edge.current_upstreams(resource_id) is not None:
                await self._edge.remove_route(resource_id)
            return
        running = [c for c in containers if c.state == "running" and c.host_port is not None]
        newest = max(
            running or containers,
            key=lambda c: c.created_at or datetime.min.replace(tzinfo=UTC),
        )
        current = [c for c in running if c.deployment_id == newest.deployment_id]
        labels = await self._runtime.labels(newest.container_id)
        hostnames = [h for h in labels.get(HOSTNAMES_LABEL, "").split(",") if h]
        if not hostnames:
            return
        upstreams = [f"127.0.0.1:{c.host_port}" for c in sorted(current, key=lambda c: c.replica)]
        unchanged = await self._edge.current_upstreams(resource_id) == upstreams
        if unchanged and self._edge.bindings_known(resource_id):
            return  # unchanged: no config reload
        # Set again also when only the bindings are unknown (the edge learns them from the
        # label; the routes it renders are those Caddy holds, so nothing is written).
        await self._edge.set_upstreams(
            resource_id,
            hostnames,
            labels.get(PATH_PREFIX_LABEL, "/") or "/",
            upstreams,
            domain_routes_label(labels.get(DOMAINS_LABEL)),
        )

    # ------------------------------------------------------------------ link

    async def attach(self, send: Send, ids: IdSequence) -> None:
        """A link is up (after welcome): send the inventory, then replay what is unacked."""
        await self.wait_ready()
        self._send, self._ids = send, ids
        containers, deployments = await self.inventory()
        await send(Inventory(id=UNSTAMPED, containers=containers, deployments=deployments))
        for entry in list(self._entries.values()):
            if entry.acked:
                continue
            for batch in progress_batches(entry.lines):
                await send(
                    DeployProgress(id=UNSTAMPED, deployment_id=entry.deployment_id, lines=batch)
                )
            self._unsent.pop(entry.deployment_id, None)
            if entry.state == "finished":
                await send(self._result_message(entry, ids))

    def detach(self, send: Send) -> None:
        """The link that gave ``send`` is gone."""
        if self._send is send:
            self._send = self._ids = None

    async def _emit(self, build: Callable[[IdSequence], AgentMessage]) -> None:
        send, ids = self._send, self._ids
        if send is None or ids is None:
            return  # replayed from the journal after the next welcome
        try:
            await send(build(ids))
        except Exception as exc:  # a closed socket: the replay covers it
            logger.debug("could not send a deployment message: %s", exc)

    async def inventory(self) -> tuple[list[ManagedContainer], list[KnownDeployment]]:
        """Managed containers (with ``serving``) and unacked journal deployments."""
        try:
            containers = await self._runtime.list_managed()
        except PlatformError as exc:
            logger.warning("inventory without containers: %s", exc.message)
            containers = []
        marked: list[ManagedContainer] = []
        serving: dict[str, set[int]] = {}
        for container in containers[:2000]:
            if container.resource_id not in serving:
                serving[container.resource_id] = await self._serving_ports(container.resource_id)
            is_serving = container.host_port in serving[container.resource_id]
            marked.append(container.model_copy(update={"serving": is_serving}))
        deployments = [
            KnownDeployment(
                deployment_id=e.deployment_id,
                state=e.state,
                outcome=e.outcome,
                accepted_at=_parse_time(e.accepted_at),
            )
            for e in self._entries.values()
            if not e.acked
        ]
        return marked, deployments[:2000]

    # ------------------------------------------------------------------ deployments

    async def accept(self, plan: DeployPlan) -> tuple[bool, DeployOutcome | None]:
        """Record the plan durably, then start it; return (already_known, outcome)."""
        check_deployment_id(plan.deployment_id)
        await self.wait_ready()
        known = self._entries.get(plan.deployment_id)
        if known is not None:
            return True, known.outcome
        entry = JournalEntry.for_plan(plan)
        self._entries[plan.deployment_id] = entry
        try:
            await self._journal.save(entry)
        except OSError:
            del self._entries[plan.deployment_id]
            raise
        if self._tasks is None:
            raise Unavailable("the deployment manager is not running")
        rollout = Rollout(
            plan,
            self._runtime,
            self._edge,
            self._log_for(entry, plan),
            self._builder,
            self._probe,
            self._bind_mount_roots,
        )
        task = self._tasks.create_task(self._execute(entry, rollout))
        self._running[plan.deployment_id] = (task, rollout)
        return False, None

    def accepted_at(self, deployment_id: str) -> datetime | None:
        """When this agent first recorded the deployment's plan (None for unknown or old ones)."""
        entry = self._entries.get(deployment_id)
        return _parse_time(entry.accepted_at) if entry is not None else None

    def _log_for(self, entry: JournalEntry, plan: DeployPlan | None = None) -> DeployLog:
        secrets = (
            [plan.container.environment.get(k, "") for k in plan.container.secret_keys]
            if plan
            else []
        )

        def sink(line: DeployLogLine) -> None:
            entry.lines.append(line)
            entry.last_sequence = line.sequence
            if line.event == "traffic-switched":
                # Journaled with this line: after a crash the candidates are known to serve,
                # even if Caddy cannot be asked at the next start.
                entry.switched = True
            self._unsent.setdefault(entry.deployment_id, []).append(line)
            if self._tasks is not None:
                flush = self._flush(entry)
                try:
                    self._tasks.create_task(flush)
                except RuntimeError:
                    # The agent is stopping: the line stays in memory only; the deployment
                    # is settled from Docker on the next start anyway.
                    flush.close()

        return DeployLog(sink, secrets, first_sequence=entry.last_sequence + 1)

    def _resource_lock(self, resource_id: str) -> asyncio.Lock:
        return self._resource_locks.setdefault(resource_id, asyncio.Lock())

    def _entry_lock(self, deployment_id: str) -> asyncio.Lock:
        return self._entry_locks.setdefault(deployment_id, asyncio.Lock())

    async def _flush(self, entry: JournalEntry) -> None:
        async with self._entry_lock(entry.deployment_id):
            pending = self._unsent.pop(entry.deployment_id, [])
            if not pending:
                return  # an earlier flush took these lines along
            try:
                await self._journal.save(entry)
            except OSError as exc:
                logger.error("cannot write the journal of %s: %s", entry.deployment_id, exc)
            for batch in progress_batches(pending):
                await self._emit(_progress(entry.deployment_id, batch))

    async def _execute(self, entry: JournalEntry, rollout: Rollout) -> None:
        deployment_id = entry.deployment_id
        try:
            async with self._resource_lock(entry.resource_id):
                result = await rollout.run()
        except asyncio.CancelledError:
            if deployment_id not in self._cancel_requested:
                raise  # the agent is stopping: the journal says running, reconciled next start
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            result = RolloutResult("canceled")
        finally:
            self._running.pop(deployment_id, None)
            self._cancel_requested.discard(deployment_id)
        entry.switched = rollout.switched
        await self._finish(entry, result)

    async def _finish(self, entry: JournalEntry, result: RolloutResult) -> None:
        async with self._entry_lock(entry.deployment_id):
            entry.state = "finished"
            entry.outcome = result.outcome
            entry.error = result.error
            entry.image_id = result.image_id
            entry.container_ids = result.container_ids
            entry.routed_domains = result.routed_domains
            entry.finished_at = datetime.now(UTC).isoformat()
            await self._journal.save(entry)
        await self._flush(entry)
        await self._emit(lambda ids: self._result_message(entry, ids))

    def _result_message(self, entry: JournalEntry, ids: IdSequence) -> DeployResult:
        return DeployResult(
            id=UNSTAMPED,
            deployment_id=entry.deployment_id,
            outcome=entry.outcome or "failed",
            error=entry.error,
            image_id=entry.image_id,
            container_ids=entry.container_ids[:20],
            last_sequence=entry.last_sequence,
            finished_at=_parse_time(entry.finished_at) or datetime.now(UTC),
            started_at=_parse_time(entry.accepted_at),
            routed_domains=entry.routed_domains[:200] if entry.routed_domains is not None else None,
        )

    def cancel(self, deployment_id: str) -> Literal["canceling", "finished", "unknown"]:
        """Cancel a running deployment unless it is past the traffic switch."""
        running = self._running.get(deployment_id)
        if running is not None:
            task, rollout = running
            if rollout.switched:
                return "finished"
            self._cancel_requested.add(deployment_id)
            task.cancel()
            return "canceling"
        return "finished" if deployment_id in self._entries else "unknown"

    async def acknowledge(self, deployment_id: str) -> None:
        """The coordinator stored the result: compact the entry to a tombstone."""
        entry = self._entries.get(deployment_id)
        if entry is None or entry.state != "finished" or entry.acked:
            return
        async with self._entry_lock(deployment_id):
            entry.acked = True
            entry.lines = []
            await self._journal.save(entry)

    # ------------------------------------------------------------------ runtime control

    async def control(self, message: RuntimeControl, ids: IdSequence) -> RuntimeControlResult:
        """Stop, start or restart a resource's containers (the edge follows new ports)."""
        started_at = datetime.now(UTC)
        error: ErrorBody | None = None
        try:
            async with self._resource_lock(message.resource_id):
                for container in await self._runtime.list_managed(message.resource_id):
                    if message.operation == "stop":
                        await self._runtime.stop(container.container_id, 10.0)
                    elif message.operation == "start":
                        await self._runtime.start(container.container_id)
                    else:
                        await self._runtime.restart(container.container_id, 10.0)
                # Docker hands out new ephemeral host ports on every start; a stopped
                # resource answers 503 "stopped" at the edge (routed before this returns).
                await self._route_resource(message.resource_id)
        except PlatformError as exc:
            error = exc.to_body()
        containers, _ = await self.inventory()
        return RuntimeControlResult(
            id=UNSTAMPED,
            re=message.id,
            resource_id=message.resource_id,
            operation=message.operation,
            status="failed" if error else "succeeded",
            containers=[c for c in containers if c.resource_id == message.resource_id][:100],
            error=error,
            started_at=started_at,
            completed_at=datetime.now(UTC),
        )

    async def probe(self, message: ResourceProbe, ids: IdSequence) -> ResourceProbeResult:
        """Report a resource's containers, whether one runs, and one HTTP health check."""
        containers, _ = await self.inventory()
        mine = [c for c in containers if c.resource_id == message.resource_id][:100]
        running = [c for c in mine if c.state == "running"]
        checks = [
            CheckResult(
                name="runtime",
                status="passed" if running else "failed",
                message=f"{len(running)} of {len(mine)} container(s) running",
                duration_ms=0,
                reason_code=None if running else "runtime-not-running",
            )
        ]
        if message.health_path is not None:
            checks.append(await self._probe_health(message, running))
        return ResourceProbeResult(
            id=UNSTAMPED,
            re=message.id,
            resource_id=message.resource_id,
            containers=mine,
            checks=checks,
            observed_at=datetime.now(UTC),
        )

    async def _probe_health(
        self, message: ResourceProbe, running: list[ManagedContainer]
    ) -> CheckResult:
        target = next((c for c in running if c.host_port is not None), None)
        if target is None or target.host_port is None:
            return CheckResult(
                name="health",
                status="skipped",
                message="no running container",
                duration_ms=0,
                reason_code="runtime-not-running",
            )
        if message.health_port is not None:
            # Only the internal port is published on the host; another port cannot be reached.
            internal = (await self._runtime.labels(target.container_id)).get(INTERNAL_PORT_LABEL)
            if internal != str(message.health_port):
                return CheckResult(
                    name="health",
                    status="skipped",
                    message=f"container port {message.health_port} is not published",
                    duration_ms=0,
                    reason_code="health-port-not-published",
                )
        begun = time.perf_counter()
        health = HealthSpec(timeout_seconds=message.timeout_seconds)
        outcome = await http_probe(target.host_port, health, message.health_path)
        return CheckResult(
            name="health",
            status="passed" if outcome.passed else "failed",
            message=outcome.message[:1000],
            duration_ms=(time.perf_counter() - begun) * 1000,
            metadata={"container": target.name},
            status_code=outcome.status_code,
            reason_code=outcome.reason_code,
        )
