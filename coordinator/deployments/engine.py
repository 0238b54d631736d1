"""The deployment engine: drives durable deployment jobs over agent links (a ``LinkListener``).

All state lives in the database, so the engine holds nothing that a restart would lose: a
deployment in ``planned`` without ``plan_acked_at`` is (re)sent whenever its agent connects,
results are acknowledged only after they are stored, and inventories reconcile the rest.
This is the only place where snapshot secrets are decrypted: to build the plan for the agent
and to mask agent output that echoes them.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

from coordinator.archives import download_path, mint_download_token
from coordinator.db import models
from coordinator.default_access import default_access_routes
from coordinator.deployments.store import (
    ACTIVE,
    TERMINAL,
    DeploymentStore,
    EventSpec,
    Masker,
    reveal_snapshot,
)
from coordinator.domains.edge_routes import domain_routes, record_routed
from coordinator.faults import crash_point
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.secrets import Keyring
from shared.errors import PlatformError, Timeout, Unavailable
from shared.messages import (
    ArchiveArtifact,
    ContainerSpec,
    DeployAccepted,
    DeployCancel,
    DeployCancelAck,
    DeploymentsAgentMessage,
    DeployPlan,
    DeployProgress,
    DeployResult,
    DeployResultAck,
    HealthSpec,
    Hello,
    ImageArtifact,
    Inventory,
    ResourceProbe,
    ResourceProbeResult,
    RouteSpec,
    RuntimeControl,
    RuntimeControlResult,
    RuntimeOperation,
    VolumeMount,
)
from shared.messages.typeset import unsolicited_types
from shared.messages.volumes import VOLUMES_CAPABILITY

logger = logging.getLogger(__name__)

PLAN_ACK_TIMEOUT_SECONDS: Final = 30.0
PLAN_ATTEMPTS: Final = 3
CANCEL_ACK_TIMEOUT_SECONDS: Final = 15.0
RUNTIME_CONTROL_TIMEOUT_SECONDS: Final = 120.0
PROBE_TIMEOUT_SECONDS: Final = 15.0
OUTCOME_EVENTS: Final = {
    "succeeded": "deployment-succeeded",
    "failed": "deployment-failed",
    "canceled": "deployment-canceled",
}


def _now() -> datetime:
    return datetime.now(UTC)


class DeploymentEngine:
    """Sends plans, applies progress/results/inventories, cancels; owns its tasks."""

    # Progress, results and inventories; replies to plans, cancels and probes resolve requests.
    message_types = unsolicited_types(DeploymentsAgentMessage)

    def __init__(self, registry: Registry, keyring: Keyring, store: DeploymentStore) -> None:
        self.registry = registry
        self.keyring = keyring
        self.store = store
        self._tasks: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._dispatching: set[str] = set()
        self._maskers: dict[str, Masker] = {}
        # What each connected agent said it can do (``hello.capabilities``).
        self._capabilities: dict[str, frozenset[str]] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own a TaskGroup for the app's lifetime; pending work is canceled on exit."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                yield
            finally:
                self._tasks = None
                for task in list(self._running):
                    task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        if self._tasks is None:
            work.close()
            return

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failed job must not take the TaskGroup (and every other job) down with it.
                logger.exception("deployment engine: %s failed", what)

        task = self._tasks.create_task(guarded())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    # ---- dispatch --------------------------------------------------------------------------

    async def submit(self, deployment_id: str, server_id: str) -> None:
        """A deployment reached ``planned``: send it now, or note that it waits for its agent."""
        if self.registry.get(server_id) is None:
            await self.store.event(
                deployment_id,
                EventSpec(
                    "waiting-for-agent", "dispatch", "waiting for the server's agent to connect"
                ),
            )
            return
        self.kick(deployment_id)

    def kick(self, deployment_id: str) -> None:
        """Dispatch in the background unless a dispatch of it is already under way."""
        if deployment_id in self._dispatching:
            return
        self._dispatching.add(deployment_id)

        async def work() -> None:
            try:
                await self._dispatch(deployment_id)
            finally:
                self._dispatching.discard(deployment_id)

        self._spawn(work(), f"dispatch of {deployment_id}")

    async def _dispatch(self, deployment_id: str) -> None:
        row = await models.Deployment.get_or_none(id=deployment_id)
        if row is None or row.status != "planned" or row.plan_acked_at is not None:
            return
        session = self.registry.get(row.server_id)
        if session is None:
            return
        try:
            fields = await self._plan_fields(row)
        except Exception as exc:  # a snapshot that cannot be decrypted, a missing archive...
            logger.exception("[%s] cannot build the plan of %s", row.server_id, row.id)
            await self._finish(
                row.id, "failed", "plan-build-failed", f"cannot build the plan: {exc}"
            )
            return
        if fields["container"].mounts and VOLUMES_CAPABILITY not in self._capabilities.get(
            row.server_id, frozenset()
        ):
            # An older agent would ignore the mounts and run the app without its data.
            await self._finish(
                row.id,
                "failed",
                "agent-volumes-unsupported",
                "the server's agent cannot mount storage volumes: upgrade it",
            )
            return
        if row.plan_sent_at is None:
            # One write for both: a crash between them would leave a plan that went out
            # without its ``dispatched`` event, and the next attempt no longer "first".
            sent = await self.store.transition(
                row.id,
                allowed_from={"planned"},
                status="planned",
                event=EventSpec("dispatched", "dispatch", f"plan sent to server {row.server_id}"),
                plan_sent_at=_now(),
            )
            if not sent:
                return  # canceled meanwhile
        else:
            await models.Deployment.filter(id=row.id).update(plan_sent_at=_now())
        crash_point("plan-sent")
        for _attempt in range(PLAN_ATTEMPTS):
            try:
                reply = await session.request(
                    lambda mid: DeployPlan(id=mid, **fields), PLAN_ACK_TIMEOUT_SECONDS
                )
            except Timeout:
                # The agent is connected but slow: ask again (it dedupes by deployment id).
                if self.registry.get(row.server_id) is session:
                    continue
                return
            except Unavailable as exc:
                # Still ``planned``: the next connect of this agent sends it again.
                logger.info("[%s] plan %s not sent: %s", row.server_id, row.id, exc.message)
                return
            except PlatformError as exc:
                await self._finish(
                    row.id, "failed", exc.code, f"the agent refused the plan: {exc.message}"
                )
                return
            if isinstance(reply, DeployAccepted):
                crash_point("plan-accepted")
                await self._accepted(session, row.id, reply)
                crash_point("agent-accepted")
            return

    async def _plan_fields(self, row: models.Deployment) -> dict[str, Any]:
        plan: dict[str, Any] = row.runtime_plan or {}
        execution: dict[str, Any] = plan.get("execution") or {}
        meta: dict[str, Any] = execution.get("metadata") or {}
        artifact: dict[str, Any] = row.artifact or {}
        snapshot: dict[str, Any] = row.environment_snapshot or {}
        revealed = reveal_snapshot(self.keyring, row.id, snapshot)
        runtime_vars = [v for v in revealed if v.get("exposure") == "runtime"]
        resource = await models.Resource.get(id=row.resource_id)
        health: dict[str, Any] = execution.get("healthCheck") or {}
        http: dict[str, Any] = health.get("http") or {}
        port = meta.get("healthPort")
        routes = execution.get("accessRoutes") or []
        domains = [d for r in routes for d in r.get("domains", [])]
        return {
            "deployment_id": row.id,
            "organization_id": row.organization_id,
            "project_id": row.project_id,
            "environment_id": row.environment_id,
            "resource_id": row.resource_id,
            "resource_slug": resource.slug,
            "artifact": await self._artifact(row, artifact),
            "container": ContainerSpec(
                command=execution.get("startCommand"),
                internal_port=execution.get("port"),
                environment={str(v["key"]): str(v["value"]) for v in runtime_vars},
                secret_keys=[str(v["key"]) for v in runtime_vars if v.get("isSecret")],
                cpus=meta.get("cpus"),
                memory_bytes=meta.get("memoryBytes"),
                replicas=int(meta.get("replicas") or 1),
                networks=planned_networks(meta),
                host_port=meta.get("hostPort"),
                labels={
                    "berth.managed": "true",
                    "berth.resource-id": row.resource_id,
                    "berth.deployment-id": row.id,
                    "berth.project-id": row.project_id,
                    "berth.environment-id": row.environment_id,
                },
                mounts=planned_mounts(meta),
            ),
            "health": HealthSpec(
                enabled=bool(health.get("enabled")) and port is not None,
                path=str(http.get("path") or "/"),
                port=port,
                interval_seconds=float(health.get("intervalSeconds") or 2),
                timeout_seconds=float(health.get("timeoutSeconds") or 2),
                retries=int(health.get("retries") or 10),
                start_period_seconds=float(health.get("startPeriodSeconds") or 0),
                expected_status_code=http.get("expectedStatusCode"),
                expected_response_text=http.get("expectedResponseText"),
            ),
            "route": RouteSpec(
                hostnames=domains,
                path_prefix=routes[0].get("pathPrefix") or "/",
                domains=await domain_routes(row.resource_id, row.server_id)
                + default_access_routes(
                    meta.get("defaultAccess"), routes[0].get("pathPrefix") or "/"
                ),
            )
            if domains
            else None,
            "rollout_strategy": "recreate"
            if meta.get("rolloutStrategy") == "recreate"
            else "blue-green",
        }

    async def _artifact(
        self, row: models.Deployment, artifact: dict[str, Any]
    ) -> ImageArtifact | ArchiveArtifact:
        if artifact.get("kind") != "archive":
            return ImageArtifact(image=str(artifact["image"]))
        archive_id = str(artifact["archiveId"])
        return ArchiveArtifact(
            archive_id=archive_id,
            sha256=str(artifact["sha256"]),
            size_bytes=int(artifact["sizeBytes"]),
            download_path=download_path(archive_id),
            download_token=await mint_download_token(archive_id, row.server_id, row.id),
            dockerfile_path=str(artifact.get("dockerfilePath") or "Dockerfile"),
            build_target=artifact.get("buildTarget"),
            image=str(artifact["image"]),
        )

    async def _accepted(
        self, session: AgentSession, deployment_id: str, reply: DeployAccepted
    ) -> None:
        now = _now()
        summary = "the agent accepted the plan"
        if reply.already_known:
            summary = "the agent already had this deployment" + (
                f" (it {reply.outcome})" if reply.outcome else ""
            )
        if await self._took_plan(deployment_id, reply.accepted_at or now, summary):
            return
        row = await models.Deployment.get_or_none(id=deployment_id)
        if row is not None and row.status in ("canceled", "cancel-requested"):
            # Canceled while the plan was in flight: make sure the agent stops it too.
            await models.Deployment.filter(id=deployment_id).update(plan_acked_at=now)
            self._spawn(self._send_cancel(session, deployment_id), f"cancel of {deployment_id}")

    async def _took_plan(self, deployment_id: str, at: datetime, summary: str) -> bool:
        """``planned`` -> ``running`` as of ``at`` (the agent's time); False if it moved on.

        The plan's reply is one way to learn it; after a coordinator crash that lost the reply,
        the inventory, a replayed line or the result says so first, and only one of them wins.
        """
        return await self.store.transition(
            deployment_id,
            allowed_from={"planned"},
            status="running",
            event=EventSpec("agent-accepted", "dispatch", summary, at=at),
            plan_acked_at=_now(),
            started_at=at,
        )

    # ---- cancel ----------------------------------------------------------------------------

    async def cancel(self, row: models.Deployment) -> str:
        """Cancel now if the agent never took the plan; otherwise ask the agent. New status."""
        now = _now()
        if row.status in ("created", "planning", "planned") and row.plan_acked_at is None:
            moved = await self.store.transition(
                row.id,
                allowed_from={"created", "planning", "planned"},
                status="canceled",
                event=EventSpec(
                    "deployment-canceled", "dispatch", "canceled before the agent took the plan"
                ),
                cancel_requested_at=now,
                finished_at=now,
            )
            if moved:
                return "canceled"
        elif row.status == "running":
            moved = await self.store.transition(
                row.id,
                allowed_from={"running"},
                status="cancel-requested",
                event=EventSpec("cancel-requested", "reconcile", "cancellation requested"),
                cancel_requested_at=now,
            )
            session = self.registry.get(row.server_id)
            if moved and session is not None:
                self._spawn(self._send_cancel(session, row.id), f"cancel of {row.id}")
            if moved:
                return "cancel-requested"
        current = await models.Deployment.get(id=row.id)
        return current.status

    async def _send_cancel(self, session: AgentSession, deployment_id: str) -> None:
        try:
            reply = await session.request(
                lambda mid: DeployCancel(id=mid, deployment_id=deployment_id),
                CANCEL_ACK_TIMEOUT_SECONDS,
            )
        except PlatformError as exc:
            logger.info(
                "[%s] cancel of %s not acknowledged: %s",
                session.server_id,
                deployment_id,
                exc.message,
            )
            return
        if isinstance(reply, DeployCancelAck) and reply.state == "unknown":
            await self._finish(deployment_id, "canceled", None, "the agent never ran it")

    # ---- agent events ----------------------------------------------------------------------

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Send every plan this server has not acknowledged; repeat pending cancellations."""
        self._capabilities[session.server_id] = frozenset(hello.capabilities)
        # One query per connect: 10,000 agents reconnecting at once each pay it.
        rows = (
            await models.Deployment.filter(
                server_id=session.server_id, status__in=["planned", "cancel-requested"]
            )
            .order_by("created_at")
            .values_list("id", "status", "plan_acked_at")
        )
        for deployment_id, status, plan_acked_at in rows:
            if status == "planned" and plan_acked_at is None:
                self.kick(str(deployment_id))
            elif status == "cancel-requested":
                self._spawn(
                    self._send_cancel(session, str(deployment_id)), f"cancel of {deployment_id}"
                )

    async def on_message(
        self, session: AgentSession, message: DeployProgress | DeployResult | Inventory
    ) -> None:
        """Store progress, apply and acknowledge results, reconcile inventories."""
        if isinstance(message, DeployProgress):
            row = await models.Deployment.get_or_none(
                id=message.deployment_id, server_id=session.server_id
            )
            if row is not None:
                if row.status == "planned" and row.plan_sent_at is not None:
                    # Lines before the acceptance was stored: the agent has the plan (an older
                    # agent's replay carries no acceptance time, its first line is closest).
                    first = min(line.timestamp for line in message.lines)
                    await self._took_plan(row.id, first, "the agent is running the plan")
                await self.store.add_lines(row.id, message.lines, self._masker(row))
                crash_point("progress-stored")
        elif isinstance(message, DeployResult):
            await self._result(session, message)
        else:
            await self._reconcile(session, message)

    def on_disconnected(self, session: AgentSession) -> None:
        """Nothing to do: unacknowledged work is found again in the database on reconnect."""

    def _masker(self, row: models.Deployment) -> Masker:
        masker = self._maskers.get(row.id)
        if masker is None:
            revealed = reveal_snapshot(self.keyring, row.id, row.environment_snapshot or {})
            masker = Masker(str(v["value"]) for v in revealed if v.get("isSecret"))
            self._maskers[row.id] = masker
        return masker

    async def _result(self, session: AgentSession, message: DeployResult) -> None:
        crash_point("result-received")
        row = await models.Deployment.get_or_none(
            id=message.deployment_id, server_id=session.server_id
        )
        if row is not None:
            if row.status == "planned" and row.plan_sent_at is not None:
                at = message.started_at or message.finished_at
                await self._took_plan(row.id, at, "the agent ran the plan")
            masker = self._masker(row)
            error_code = _error_code(message)
            error_text = masker.mask(message.error.message)[0] if message.error else None
            artifact = dict(row.artifact or {})
            if message.image_id and not artifact.get("imageId"):
                artifact["imageId"] = message.image_id
                await models.Deployment.filter(id=row.id).update(artifact=artifact)
            finished = await self._finish(
                row.id, message.outcome, error_code, error_text, message.finished_at
            )
            if message.outcome == "succeeded":
                await record_routed(row.resource_id, row.server_id, row.id, message.routed_domains)
            if not finished and row.status == message.outcome and error_text:
                # An inventory may settle the outcome first (it only carries the outcome); the
                # result replayed right after it brings the reason, so fill that in.
                await models.Deployment.filter(
                    id=row.id, status=message.outcome, error_message__isnull=True
                ).update(error_code=error_code, error_message=error_text)
            self._maskers.pop(row.id, None)
        # Always acknowledged (duplicates and unknown ids too), or the agent resends forever.
        await session.send(
            DeployResultAck(
                id=session.next_id(), re=message.id, deployment_id=message.deployment_id
            )
        )

    async def _finish(
        self,
        deployment_id: str,
        outcome: str,
        error_code: str | None,
        error_message: str | None,
        finished_at: datetime | None = None,
    ) -> bool:
        summary = {"succeeded": "deployment succeeded", "canceled": "deployment canceled"}.get(
            outcome, f"deployment failed: {error_message or 'no reason given'}"
        )
        moved = await self.store.transition(
            deployment_id,
            allowed_from=ACTIVE,
            status=outcome,
            event=EventSpec(
                OUTCOME_EVENTS[outcome],
                "reconcile",
                summary,
                retriable=outcome == "failed",
                at=finished_at,
            ),
            error_code=error_code,
            error_message=error_message,
            finished_at=finished_at or _now(),
        )
        if moved and outcome == "succeeded":
            row = await models.Deployment.get(id=deployment_id)
            if row.rollback_of_deployment_id:
                await self.store.transition(
                    row.rollback_of_deployment_id,
                    allowed_from=TERMINAL - {"rolled-back"},
                    status="rolled-back",
                    event=EventSpec(
                        "deployment-rolled-back", "switch", f"rolled back by {deployment_id}"
                    ),
                )
        return moved

    async def _reconcile(self, session: AgentSession, inventory: Inventory) -> None:
        """Settle what the agent's inventory proves; outcomes wait for the replayed result.

        The agent sends its inventory, then every unacknowledged deployment's lines, then its
        result, on this same link. An outcome taken from the inventory would be stored ahead
        of those lines and stamped with this coordinator's clock, so finished entries are left
        to their ``deploy_result``; a plan whose acceptance was lost is marked running here,
        as of the agent's own acceptance time, before its lines arrive.
        """
        known = {d.deployment_id: d for d in inventory.deployments}
        rows = await models.Deployment.filter(
            server_id=session.server_id, status__in=["planned", "running", "cancel-requested"]
        ).order_by("created_at")
        for row in rows:
            entry = known.get(row.id)
            if row.status == "planned":
                if entry is not None and row.plan_sent_at is not None and entry.accepted_at:
                    await self._took_plan(row.id, entry.accepted_at, "the agent has the plan")
            elif entry is None:
                await self._finish(
                    row.id,
                    "failed",
                    "agent-lost-deployment",
                    "the agent no longer knows this deployment",
                )

    # ---- runtime control and probes --------------------------------------------------------

    async def runtime_control(
        self, server_id: str, resource_id: str, operation: RuntimeOperation
    ) -> RuntimeControlResult:
        """Ask the agent to stop/start/restart a resource's containers."""
        session = self.registry.require(server_id)
        reply = await session.request(
            lambda mid: RuntimeControl(id=mid, resource_id=resource_id, operation=operation),
            RUNTIME_CONTROL_TIMEOUT_SECONDS,
        )
        if not isinstance(reply, RuntimeControlResult):
            raise Unavailable("the agent answered runtime control with an unexpected frame")
        return reply

    async def probe(
        self, server_id: str, resource_id: str, path: str | None, port: int | None
    ) -> ResourceProbeResult:
        """Ask the agent to inspect a resource's containers and run its health check."""
        session = self.registry.require(server_id)
        reply = await session.request(
            lambda mid: ResourceProbe(
                id=mid, resource_id=resource_id, health_path=path, health_port=port
            ),
            PROBE_TIMEOUT_SECONDS,
        )
        if not isinstance(reply, ResourceProbeResult):
            raise Unavailable("the agent answered the probe with an unexpected frame")
        return reply


def _error_code(message: DeployResult) -> str | None:
    """The agent's specific reason code when it gives one (``agent-restarted``), else its code."""
    if message.error is None:
        return None
    reason = message.error.details.get("reasonCode")
    return reason if isinstance(reason, str) else str(message.error.code)


def planned_networks(meta: dict[str, Any]) -> list[str]:
    """The dependency networks a deployment's runtime plan metadata recorded."""
    return [str(n) for n in meta.get("networks") or []]


def planned_mounts(meta: dict[str, Any]) -> list[VolumeMount]:
    """The storage mounts a deployment's runtime plan metadata recorded, as wire mounts (also
    what that deployment's task runs get, so a run sees the data its serving version sees)."""
    return [
        VolumeMount(
            volume_id=str(m["volumeId"]),
            kind=m["kind"],
            source=str(m["source"]),
            destination=str(m["destination"]),
            read_only=bool(m.get("readOnly")),
        )
        for m in meta.get("mounts") or []
    ]
