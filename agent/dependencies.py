"""The dependency-resources feature: run databases (volume, private network, container with a
health check) when the coordinator asks, and remove them; answers ``dependency_status``."""

import asyncio
import logging
from pathlib import Path
from typing import Any, assert_never

from agent.features import AgentFeature, LinkContext
from agent.runtime import ContainerRuntime, EngineError
from agent.runtime.dependency_ops import DependencyOps
from agent.settings import AgentSettings
from shared.errors import PlatformError
from shared.messages import (
    DEPENDENCIES_CAPABILITY,
    DEPENDENCIES_COORDINATOR_TYPES,
    UNSTAMPED,
    DependenciesCoordinatorMessage,
    DependencyEnsure,
    DependencyRemove,
    DependencyRotate,
    DependencyStatus,
)

logger = logging.getLogger(__name__)


class DependencyFeature:
    """Serves ``dependency_ensure``, ``_remove`` and ``_rotate``; one at a time per resource."""

    def __init__(self, ops: DependencyOps) -> None:
        self._ops = ops
        self._requests: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def message_types(self) -> frozenset[str]:
        """``dependency_ensure``, ``dependency_remove``."""
        return DEPENDENCIES_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``dependencies.v1``."""
        return [DEPENDENCIES_CAPABILITY]

    async def run(self) -> None:
        """Nothing runs between requests; cancel requests in flight when the daemon stops."""
        try:
            await asyncio.Event().wait()
        finally:
            for task in list(self._requests):
                task.cancel()

    async def attached(self, link: LinkContext) -> None:
        """Nothing to send on a new link (the coordinator resends what it still waits for)."""

    def detached(self, link: LinkContext) -> None:
        """Requests of the old link finish; their replies are dropped with the link."""

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task of its own (an ensure waits for the health check)."""
        task = asyncio.get_running_loop().create_task(self._answer(message, link))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: DependenciesCoordinatorMessage, link: LinkContext) -> None:
        lock = self._locks.setdefault(message.dependency_resource_id, asyncio.Lock())
        async with lock:
            reply = await self.handle(message)
        try:
            await link.send(reply)
        except Exception as exc:  # the link closed under the reply; the coordinator asks again
            logger.debug("could not answer %s: %s", message.id, exc)

    async def handle(self, message: DependenciesCoordinatorMessage) -> DependencyStatus:
        """One reply per request: ready/removed, or failed with the engine's reason."""
        dependency_id = message.dependency_resource_id
        try:
            match message:
                case DependencyEnsure() | DependencyRotate():
                    # Both end with the container running and ready; a rotation replaces it.
                    start = (
                        self._ops.ensure
                        if isinstance(message, DependencyEnsure)
                        else self._ops.rotate
                    )
                    running = await start(
                        dependency_id, message.container, message.ready_timeout_seconds
                    )
                    return DependencyStatus(
                        id=UNSTAMPED,
                        re=message.id,
                        dependency_resource_id=dependency_id,
                        status="ready",
                        container_id=running.container_id,
                        host_port=running.host_port,
                    )
                case DependencyRemove():
                    await self._ops.remove(dependency_id, message.keep_data)
                    return DependencyStatus(
                        id=UNSTAMPED,
                        re=message.id,
                        dependency_resource_id=dependency_id,
                        status="removed",
                    )
                case _:
                    assert_never(message)
        except (EngineError, PlatformError) as exc:
            logger.warning("dependency %s: %s failed: %s", dependency_id, message.type, exc)
            return DependencyStatus(
                id=UNSTAMPED,
                re=message.id,
                dependency_resource_id=dependency_id,
                status="failed",
                message=str(exc)[:2000],
            )


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """The feature, when the engine is reached on a local socket (else not offered)."""
    engine = getattr(runtime, "engine_client", None)
    client = engine() if callable(engine) else None
    if client is None:
        return None
    return DependencyFeature(DependencyOps(client, dict(settings.extra_labels)))
