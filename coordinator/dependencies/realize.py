"""Realizing managed dependency resources on their server: ensure (run) and remove, by the agent.

A provisioning runs in the background after the API answered: the agent creates the volume,
network and container and answers once the health check passes (or fails). The row records
the outcome. When an agent connects, resources of its server still ``provisioning`` (a
coordinator restart or a lost link mid-way) are sent again: the agent's ensure is idempotent.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from coordinator.db.dependency_models import DependencyProvisioningPlan, DependencyResource
from coordinator.dependencies import kinds
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.secrets import Keyring
from shared.errors import PlatformError, RuntimeFailed, Unavailable
from shared.messages import (
    DependencyContainer,
    DependencyEnsure,
    DependencyRemove,
    DependencyRotate,
    DependencyStatus,
    Hello,
)

logger = logging.getLogger(__name__)

# Pulling an official image on a slow link takes a while; the agent's own wait is shorter.
READY_TIMEOUT_SECONDS: Final = 180.0
_REPLY_MARGIN_SECONDS: Final = 30.0
REMOVE_TIMEOUT_SECONDS: Final = 60.0


def secret_binding(dependency_resource_id: str, version: int) -> str:
    """What a dependency resource's sealed connection URL is bound to (keyring AAD)."""
    return f"dependency-resource:{dependency_resource_id}:connection:v{version}"


def reveal_url(keyring: Keyring, row: DependencyResource) -> str:
    """The plaintext connection URL (only for agents and deployments, never for answers)."""
    return keyring.decrypt(row.sealed_connection_url, secret_binding(row.id, row.secret_version))


class Provisioner:
    """Sends ensure/remove requests to agents and records the outcome on the row."""

    def __init__(self, registry: Registry, keyring: Keyring) -> None:
        self.registry = registry
        self.keyring = keyring
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, dependency_resource_id: str) -> None:
        """Realize the resource in the background."""
        task = asyncio.get_running_loop().create_task(self.ensure(dependency_resource_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel what still runs (a restart resumes it when the agent reconnects)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def ensure(self, dependency_resource_id: str) -> None:
        """Ask the server's agent to run the resource; record ready or failed."""
        row = await DependencyResource.get_or_none(id=dependency_resource_id)
        if row is None or row.server_id is None or row.lifecycle_status != "provisioning":
            return
        now = datetime.now(UTC)
        await DependencyResource.filter(id=row.id).update(attempted_at=now)
        try:
            message = self._ensure_message(row)
            session = self.registry.require(row.server_id)
            reply = await session.request(
                lambda mid: message.model_copy(update={"id": mid}),
                READY_TIMEOUT_SECONDS + _REPLY_MARGIN_SECONDS,
            )
        except asyncio.CancelledError:
            raise
        except PlatformError as exc:
            if isinstance(exc, Unavailable):
                # No agent link now: the resource stays provisioning; the next connect resumes.
                logger.info("dependency %s waits for its server's agent: %s", row.id, exc)
                return
            await self._failed(row.id, str(exc.code), str(exc))
            return
        if not isinstance(reply, DependencyStatus) or reply.status != "ready":
            text = reply.message if isinstance(reply, DependencyStatus) else "unexpected reply"
            await self._failed(row.id, "dependency-not-ready", text)
            return
        now = datetime.now(UTC)
        await DependencyProvisioningPlan.filter(
            dependency_resource_id=row.id, status="accepted"
        ).update(status="completed", completed_at=now)
        await DependencyResource.filter(id=row.id, lifecycle_status="provisioning").update(
            lifecycle_status="ready",
            realization_status="realized",
            realized_at=now,
            container_id=reply.container_id,
            host_port=reply.host_port,
            failure_code=None,
            failure_message=None,
        )

    def _ensure_message(self, row: DependencyResource) -> DependencyEnsure:
        password = _password(reveal_url(self.keyring, row))
        container = self.container(
            row, kinds.Credentials(row.username, password, row.database_name)
        )
        return DependencyEnsure(
            id=0,
            dependency_resource_id=row.id,
            container=container,
            ready_timeout_seconds=READY_TIMEOUT_SECONDS,
        )

    def container(self, row: DependencyResource, creds: kinds.Credentials) -> DependencyContainer:
        """The container spec of ``row`` with ``creds``."""
        spec = kinds.spec_of(row.kind)
        return kinds.container_for(
            spec,
            row.image or "",
            creds,
            cpus=row.cpus,
            memory_bytes=row.memory_bytes,
            publish_port=row.publish_port,
            # Not ``berth.managed``: that label marks deployment containers, which the agent's
            # reconcile and capacity prune may stop or remove; a database is neither.
            labels={
                "berth.dependency": "true",
                "berth.dependency-resource-id": row.id,
                "berth.project-id": row.project_id,
                "berth.environment-id": row.environment_id,
            },
        )

    async def rotate(self, row: DependencyResource, creds: kinds.Credentials) -> None:
        """Have the agent set ``creds``' password and recreate the container (502 on failure,
        503 without a link); the caller stores the new secret only after this returned."""
        if row.server_id is None:
            raise PlatformError("only a database Berth runs can be rotated here")
        message = DependencyRotate(
            id=0,
            dependency_resource_id=row.id,
            container=self.container(row, creds),
            ready_timeout_seconds=READY_TIMEOUT_SECONDS,
        )
        session = self.registry.require(row.server_id)
        reply = await session.request(
            lambda mid: message.model_copy(update={"id": mid}),
            READY_TIMEOUT_SECONDS + _REPLY_MARGIN_SECONDS,
        )
        if not isinstance(reply, DependencyStatus) or reply.status != "ready":
            text = reply.message if isinstance(reply, DependencyStatus) else "unexpected reply"
            raise RuntimeFailed(f"the agent could not rotate the password: {text}")

    async def _failed(self, row_id: str, code: str, message: str) -> None:
        await DependencyProvisioningPlan.filter(
            dependency_resource_id=row_id, status="accepted"
        ).update(status="failed", failure_code=code[:64], failure_message=message[:2000])
        await DependencyResource.filter(id=row_id, lifecycle_status="provisioning").update(
            lifecycle_status="failed",
            realization_status="failed",
            failed_at=datetime.now(UTC),
            failure_code=code[:64],
            failure_message=message[:2000],
        )

    async def remove(self, row: DependencyResource) -> None:
        """Ask the agent to remove the container, network and volume (503 without a link)."""
        if row.server_id is None:
            return
        session = self.registry.require(row.server_id)
        reply = await session.request(
            lambda mid: DependencyRemove(id=mid, dependency_resource_id=row.id),
            REMOVE_TIMEOUT_SECONDS,
        )
        if not isinstance(reply, DependencyStatus) or reply.status != "removed":
            text = reply.message if isinstance(reply, DependencyStatus) else "unexpected reply"
            raise PlatformError(f"the agent could not remove the database: {text}")

    @property
    def message_types(self) -> frozenset[str]:
        """None: the agent's ``dependency_status`` frames are replies, resolved by the session."""
        return frozenset()

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Never called (no unsolicited frames)."""

    def on_disconnected(self, session: AgentSession) -> None:
        """A request in flight fails with ``unavailable``; the next connect resumes it."""

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Resume what was provisioning on this server."""
        pending = await DependencyResource.filter(
            server_id=session.server_id, lifecycle_status="provisioning"
        ).values_list("id", flat=True)
        for row_id in pending:
            self.start(str(row_id))


def _password(url: str) -> str:
    return unquote(urlsplit(url).password or "")
