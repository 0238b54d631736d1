"""Durable intents of volume replaces: STATE_DIR/volume-restores/<backupId>.json, one a replace."""

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.journal import _write_atomic
from shared.errors import InvalidMessage

logger = logging.getLogger(__name__)

# Backup ids become file names, and volume and container names reach the engine's URLs:
# anything else than these could escape the directory or name another object.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SAFE_VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_SAFE_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class ReplaceIntent:
    """A replace the agent committed to: the target volume is emptied and filled from the
    staging volume, then ``stopped`` containers are started again."""

    backup_id: str
    volume_name: str
    staging_volume: str
    stopped: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backup_id(self.backup_id)
        for volume in (self.volume_name, self.staging_volume):
            if not _SAFE_VOLUME.fullmatch(volume):
                raise InvalidMessage(f"volume name {volume[:60]!r} is not a volume name")
        for container in self.stopped:
            if not _SAFE_CONTAINER.fullmatch(container):
                raise InvalidMessage(f"container {container[:60]!r} is not a container id")

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "backupId": self.backup_id,
            "volumeName": self.volume_name,
            "stagingVolume": self.staging_volume,
            "stoppedContainers": self.stopped,
            "labels": self.labels,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReplaceIntent":
        """Parse a file's content (raises ValueError/KeyError/TypeError when malformed)."""
        labels = data.get("labels") or {}
        if not isinstance(labels, dict):
            raise TypeError("labels is not an object")
        return cls(
            backup_id=str(data["backupId"]),
            volume_name=str(data["volumeName"]),
            staging_volume=str(data["stagingVolume"]),
            stopped=[str(c) for c in data.get("stoppedContainers") or []],
            labels={str(k): str(v) for k, v in labels.items()},
        )


def check_backup_id(backup_id: str) -> None:
    """Refuse ids that cannot safely be file names."""
    if not _SAFE_ID.fullmatch(backup_id):
        raise InvalidMessage(f"backup id {backup_id[:40]!r} has invalid characters")


class ReplaceIntents:
    """Reads and writes ``<state_dir>/volume-restores/<backupId>.json`` (atomic rewrites)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "volume-restores"

    def _path(self, backup_id: str) -> Path:
        check_backup_id(backup_id)
        return self.directory / f"{backup_id}.json"

    def _save_sync(self, intent: ReplaceIntent) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(intent.to_json(), separators=(",", ":")).encode()
        _write_atomic(self._path(intent.backup_id), data)

    async def save(self, intent: ReplaceIntent) -> None:
        """Persist the intent durably (fsync'd) before returning."""
        await asyncio.to_thread(self._save_sync, intent)

    async def remove(self, backup_id: str) -> None:
        """Forget the intent of ``backup_id`` (gone is fine)."""
        await asyncio.to_thread(self._path(backup_id).unlink, missing_ok=True)

    def _load_all_sync(self) -> list[ReplaceIntent]:
        intents: list[ReplaceIntent] = []
        if not self.directory.is_dir():
            return intents
        for path in sorted(self.directory.glob("*.json")):
            try:
                intent = ReplaceIntent.from_json(json.loads(path.read_text(encoding="utf-8")))
                if path.stem != intent.backup_id:
                    raise ValueError(f"names backup {intent.backup_id!r}")
            except (OSError, ValueError, KeyError, TypeError, InvalidMessage) as exc:
                # A damaged file must not stop the agent; keep it aside for a human.
                logger.error("unreadable volume restore record %s: %s", path, exc)
                path.rename(path.with_suffix(".broken"))
                continue
            intents.append(intent)
        return intents

    async def load_all(self) -> list[ReplaceIntent]:
        """Every recorded intent (damaged files set aside as ``.broken``)."""
        return await asyncio.to_thread(self._load_all_sync)
