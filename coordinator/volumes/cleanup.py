"""Runtime cleanup of a storage volume: ask its server's agent to list or remove the Docker
volumes Berth created for it. Blocked while attached; a bind mount's host data is never removed."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.volume_models import StorageAttachment, StorageVolume
from coordinator.hub.registry import Registry
from coordinator.lookup import get_server
from coordinator.volumes.store import get_volume
from shared.errors import Conflict, PlatformError
from shared.messages import VolumeCandidate, VolumeCleanup, VolumeCleanupResult

CLEANUP_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class Notice:
    """Something the caller should know about the cleanup."""

    code: str
    message: str
    target: str | None


@dataclass
class CleanupOutcome:
    """What the cleanup looked at and did."""

    volume: StorageVolume
    server: models.Server
    dry_run: bool
    cleaned_at: datetime | None
    inspected_count: int = 0
    candidates: list[VolumeCandidate] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    # Set when the candidates were only matched because the volume is still attached.
    blocked_reason: str | None = None


async def run(
    actor: Principal,
    request_id: str,
    registry: Registry,
    volume_id: str,
    *,
    server_id: str | None,
    before: datetime | None,
    dry_run: bool,
) -> CleanupOutcome:
    """Dry-run (default) or remove the volume's Docker realizations on one server."""
    volume = await get_volume(actor, volume_id)
    chosen = server_id or volume.server_id
    if chosen is None:
        raise Conflict(
            "the volume was never deployed, so no server holds its data: pass serverId",
            details={"reasonCode": "storage-volume-not-placed", "storageVolumeId": volume.id},
        )
    server = await get_server(actor, chosen)
    attached = await StorageAttachment.filter(volume_id=volume.id).exists()
    outcome = CleanupOutcome(volume, server, dry_run or attached, None)
    if volume.kind == "bind-mount":
        outcome.warnings.append(
            Notice(
                "bind-mount-kept",
                "a bind mount's host directory is the operator's: Berth never removes it",
                volume.source_path,
            )
        )
        return outcome
    session = registry.require(server.id)
    reply = await session.request(
        lambda i: VolumeCleanup(id=i, volume_id=volume.id, dry_run=outcome.dry_run, before=before),
        CLEANUP_TIMEOUT_SECONDS,
    )
    if not isinstance(reply, VolumeCleanupResult):
        raise PlatformError(f"the agent answered volume_cleanup with {reply.type}")
    outcome.cleaned_at = reply.cleaned_at
    outcome.inspected_count = reply.inspected_count
    outcome.candidates = list(reply.candidates)
    if attached:
        outcome.blocked_reason = "active-attachment"
        outcome.warnings.append(
            Notice(
                "active-attachment",
                "the volume is attached to a resource: detach it before removing its data",
                volume.id,
            )
        )
    removed = [c.name for c in reply.candidates if c.action == "removed"]
    if not outcome.dry_run:
        await audit.record(
            actor=actor,
            event_type="storage-volume.runtime-cleaned",
            aggregate_type="storage-volume",
            aggregate_id=volume.id,
            payload={
                "projectId": volume.project_id,
                "environmentId": volume.environment_id,
                "serverId": server.id,
                "removed": removed,
            },
            request_id=request_id,
        )
    return outcome
