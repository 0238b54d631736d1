"""The storage-volume feature: ``volume_cleanup`` lists or removes the Docker volumes this agent
created for one storage volume (labels ``berth.managed`` and ``berth.storage-volume-id``)."""

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.features import AgentFeature, LinkContext
from agent.mounts import VOLUME_LABEL
from agent.runtime import MANAGED_LABEL, ContainerRuntime, EngineError
from agent.settings import AgentSettings
from shared.errors import PlatformError
from shared.messages import (
    UNSTAMPED,
    VOLUMES_CAPABILITY,
    VOLUMES_COORDINATOR_TYPES,
    VolumeCandidate,
    VolumeCleanup,
    VolumeCleanupResult,
)
from shared.messages.volumes import MAX_CANDIDATES

logger = logging.getLogger(__name__)


def _created(raw: Any) -> datetime | None:
    # The engine's RFC 3339 time, e.g. "2026-12-06T07:10:00Z".
    try:
        return datetime.fromisoformat(str(raw)).astimezone(UTC) if raw else None
    except ValueError:
        return None


async def clean(runtime: ContainerRuntime, request: VolumeCleanup) -> VolumeCleanupResult:
    """Match (dry run) or remove the volumes of ``request.volumeId`` created before ``before``."""
    found = await runtime.volumes([f"{MANAGED_LABEL}=true", f"{VOLUME_LABEL}={request.volume_id}"])
    candidates: list[VolumeCandidate] = []
    for volume in sorted(found, key=lambda v: str(v.get("Name")))[:MAX_CANDIDATES]:
        name = str(volume.get("Name") or "")
        created = _created(volume.get("CreatedAt"))
        if request.before is not None and (created is None or created >= request.before):
            candidates.append(
                VolumeCandidate(name=name, created_at=created, action="skipped", message="too new")
            )
            continue
        if request.dry_run:
            candidates.append(VolumeCandidate(name=name, created_at=created, action="matched"))
            continue
        try:
            await runtime.remove_volume(name)
        except EngineError as exc:
            candidates.append(
                VolumeCandidate(
                    name=name,
                    created_at=created,
                    action="blocked",
                    blocked_reason="in-use" if exc.status == 409 else "engine-refused",
                    message=str(exc)[:2000],
                )
            )
            continue
        logger.info("removed volume %s of storage volume %s", name, request.volume_id)
        candidates.append(VolumeCandidate(name=name, created_at=created, action="removed"))
    return VolumeCleanupResult(
        id=UNSTAMPED,
        re=request.id,
        dry_run=request.dry_run,
        cleaned_at=datetime.now(UTC),
        inspected_count=len(found),
        candidates=candidates,
    )


class VolumeFeature:
    """Answers ``volume_cleanup`` requests, each in its own task."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self._runtime = runtime
        self._group: asyncio.TaskGroup | None = None

    @property
    def message_types(self) -> frozenset[str]:
        """``volume_cleanup``."""
        return VOLUMES_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``volumes.v1``."""
        return [VOLUMES_CAPABILITY]

    async def run(self) -> None:
        """Own the requests' task group until the daemon stops."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await asyncio.Event().wait()
        finally:
            self._group = None

    async def attached(self, link: LinkContext) -> None:
        """Nothing per link."""

    def detached(self, link: LinkContext) -> None:
        """Nothing per link: a reply for a closed link is dropped."""

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task; never awaits."""
        if isinstance(message, VolumeCleanup) and self._group is not None:
            self._group.create_task(self._answer(message, link))

    async def _answer(self, message: VolumeCleanup, link: LinkContext) -> None:
        try:
            reply = await clean(self._runtime, message)
        except (EngineError, PlatformError) as exc:
            error = exc if isinstance(exc, PlatformError) else PlatformError(str(exc))
            await self._send(link, lambda: link.fail(message.id, error))
            return
        await self._send(link, lambda: link.send(reply))

    @staticmethod
    async def _send(link: LinkContext, send: Any) -> None:
        try:
            await send()
        except Exception as exc:
            # The link closed under the reply: the coordinator's request times out.
            logger.debug("could not answer a volume cleanup: %s", exc)


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the storage-volume feature."""
    return VolumeFeature(runtime)
