"""The deployment journal: one durable JSON file per deployment under STATE_DIR/deployments."""

import asyncio
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shared.errors import ErrorBody, InvalidMessage
from shared.messages import DeployLogLine, DeployOutcome, DeployPlan

logger = logging.getLogger(__name__)

# Deployment ids become file names: anything else than this could escape the directory.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


@dataclass
class JournalEntry:
    """What the agent remembers about one deployment (never the plan's secret values)."""

    deployment_id: str
    resource_id: str
    resource_slug: str
    state: Literal["running", "finished"] = "running"
    outcome: DeployOutcome | None = None
    error: ErrorBody | None = None
    image_id: str | None = None
    container_ids: list[str] = field(default_factory=list)
    finished_at: str | None = None
    # When the plan was first recorded (ISO, UTC): the deployment's start on every replay.
    accepted_at: str | None = None
    lines: list[DeployLogLine] = field(default_factory=list)
    last_sequence: int = 0
    switched: bool = False
    # Domain binding ids the edge served when the rollout finished (None: not reported).
    routed_domains: list[str] | None = None
    # The coordinator stored the result: only a tombstone is kept, so a re-sent plan is
    # recognised and never applied twice.
    acked: bool = False

    @classmethod
    def for_plan(cls, plan: DeployPlan) -> "JournalEntry":
        """A new running entry."""
        return cls(
            plan.deployment_id,
            plan.resource_id,
            plan.resource_slug,
            accepted_at=datetime.now(UTC).isoformat(),
        )

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "deploymentId": self.deployment_id,
            "resourceId": self.resource_id,
            "resourceSlug": self.resource_slug,
            "state": self.state,
            "outcome": self.outcome,
            "error": self.error.model_dump(mode="json", by_alias=True) if self.error else None,
            "imageId": self.image_id,
            "containerIds": self.container_ids,
            "finishedAt": self.finished_at,
            "acceptedAt": self.accepted_at,
            "lines": [line.model_dump(mode="json", by_alias=True) for line in self.lines],
            "lastSequence": self.last_sequence,
            "switched": self.switched,
            "routedDomains": self.routed_domains,
            "acked": self.acked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JournalEntry":
        """Parse a file's content (raises ValueError/KeyError/TypeError when malformed)."""
        return cls(
            deployment_id=str(data["deploymentId"]),
            resource_id=str(data["resourceId"]),
            resource_slug=str(data.get("resourceSlug", "")),
            state="finished" if data.get("state") == "finished" else "running",
            outcome=data.get("outcome"),
            error=ErrorBody.model_validate(data["error"]) if data.get("error") else None,
            image_id=data.get("imageId"),
            container_ids=[str(c) for c in data.get("containerIds") or []],
            finished_at=data.get("finishedAt"),
            accepted_at=data.get("acceptedAt"),
            lines=[DeployLogLine.model_validate(line) for line in data.get("lines") or []],
            last_sequence=int(data.get("lastSequence", 0)),
            switched=bool(data.get("switched", False)),
            routed_domains=(
                [str(d) for d in data["routedDomains"]]
                if isinstance(data.get("routedDomains"), list)
                else None
            ),
            acked=bool(data.get("acked", False)),
        )


def check_deployment_id(deployment_id: str) -> None:
    """Refuse ids that cannot safely be file names."""
    if not _SAFE_ID.fullmatch(deployment_id) or deployment_id.startswith("."):
        raise InvalidMessage(f"deployment id {deployment_id[:40]!r} has invalid characters")


# Saves can overlap (a rollout step and a settle on start, or two managers in one process in
# tests); they take turns, and each serialises its entry inside the lock, so the last write
# holds the newest state.
_WRITE_LOCK = threading.Lock()


def _write_atomic(path: Path, data: bytes) -> None:
    # A unique temp name: two writers of one entry (e.g. a cancelled manager still finishing
    # while the next one starts) must not rename each other's temp file away.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    # The rename itself must survive a power loss too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Journal:
    """Reads and writes ``<state_dir>/deployments/<deploymentId>.json`` (atomic rewrites)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "deployments"

    def _path(self, deployment_id: str) -> Path:
        check_deployment_id(deployment_id)
        return self.directory / f"{deployment_id}.json"

    def _save_sync(self, entry: JournalEntry) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _WRITE_LOCK:
            data = json.dumps(entry.to_json(), separators=(",", ":")).encode()
            _write_atomic(self._path(entry.deployment_id), data)

    async def save(self, entry: JournalEntry) -> None:
        """Persist the entry durably (fsync'd) before returning."""
        await asyncio.to_thread(self._save_sync, entry)

    def _load_all_sync(self) -> dict[str, JournalEntry]:
        entries: dict[str, JournalEntry] = {}
        if not self.directory.is_dir():
            return entries
        for path in sorted(self.directory.glob("*.json")):
            try:
                entry = JournalEntry.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A damaged file must not stop the agent; keep it aside for a human.
                logger.error("unreadable journal file %s: %s", path, exc)
                path.rename(path.with_suffix(".broken"))
                continue
            entries[entry.deployment_id] = entry
        return entries

    async def load_all(self) -> dict[str, JournalEntry]:
        """Every journal entry, tombstones included."""
        return await asyncio.to_thread(self._load_all_sync)
