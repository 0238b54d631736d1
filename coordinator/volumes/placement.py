"""Where a resource's volumes are and how they reach a deployment plan: the planner's view."""

from dataclasses import dataclass
from typing import Any

from coordinator.db.volume_models import StorageAttachment, StorageVolume
from coordinator.volumes import paths


@dataclass(frozen=True)
class PlannedMount:
    """One attachment as the planner sees it."""

    attachment_id: str
    volume_id: str
    name: str
    kind: str
    server_id: str | None
    # The Docker volume name, or the bind mount's host directory.
    source: str
    destination: str
    read_only: bool

    def as_plan(self) -> dict[str, Any]:
        """The entry kept in the runtime plan (a rollback mounts exactly these again)."""
        return {
            "attachmentId": self.attachment_id,
            "volumeId": self.volume_id,
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "destination": self.destination,
            "readOnly": self.read_only,
        }


async def planned_mounts(resource_id: str) -> list[PlannedMount]:
    """The resource's attachments now, in attachment order."""
    rows = (
        await StorageAttachment.filter(resource_id=resource_id)
        .prefetch_related("volume")
        .order_by("id")
    )
    found = []
    for row in rows:
        volume: StorageVolume = row.volume
        found.append(
            PlannedMount(
                attachment_id=row.id,
                volume_id=volume.id,
                name=volume.name,
                kind=volume.kind,
                server_id=volume.server_id,
                source=volume.source_path or paths.docker_volume_name(volume.id),
                destination=row.destination_path,
                read_only=row.mount_mode == "read-only",
            )
        )
    return found


async def place(runtime_plan: dict[str, Any], server_id: str) -> None:
    """Pin the plan's volumes that no deployment placed yet to ``server_id``."""
    execution = runtime_plan.get("execution") or {}
    mounts = (execution.get("metadata") or {}).get("mounts") or []
    ids = [str(m["volumeId"]) for m in mounts if isinstance(m, dict) and m.get("volumeId")]
    if ids:
        await StorageVolume.filter(id__in=ids, server_id__isnull=True).update(server_id=server_id)
