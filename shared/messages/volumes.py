"""Storage-volume messages: clean up the Docker volumes Berth created for one storage volume."""

from datetime import datetime
from typing import Literal

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

# Capability an agent advertises in ``hello.capabilities`` when it answers ``volume_cleanup``.
VOLUMES_CAPABILITY = "volumes.v1"
MAX_CANDIDATES = 100


class VolumeCleanup(WireModel):
    """Coordinator → agent request: list (``dryRun``) or remove the Docker volumes labelled
    ``berth.storage-volume-id={volumeId}`` that this agent created. Answered by
    ``volume_cleanup_result``. Volumes created at or after ``before`` are skipped; a volume a
    container still uses is never removed (the engine refuses, the candidate is ``blocked``)."""

    type: Literal["volume_cleanup"] = "volume_cleanup"
    id: int
    volume_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    dry_run: bool = True
    before: datetime | None = None


class VolumeCandidate(WireModel):
    """One Docker volume the cleanup looked at and what it did with it."""

    name: str = Field(max_length=255)
    created_at: datetime | None = None
    action: Literal["matched", "removed", "skipped", "blocked"]
    blocked_reason: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=2000)


class VolumeCleanupResult(WireModel):
    """Agent → coordinator reply to ``volume_cleanup``."""

    type: Literal["volume_cleanup_result"] = "volume_cleanup_result"
    id: int
    re: int
    dry_run: bool
    cleaned_at: datetime
    inspected_count: int = Field(ge=0)
    candidates: list[VolumeCandidate] = Field(default_factory=list, max_length=MAX_CANDIDATES)


VolumesAgentMessage = VolumeCleanupResult
VolumesCoordinatorMessage = VolumeCleanup
VOLUMES_AGENT_TYPES = message_types(VolumesAgentMessage)
VOLUMES_COORDINATOR_TYPES = message_types(VolumesCoordinatorMessage)
