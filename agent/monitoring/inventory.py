"""What Berth keeps on this server: managed containers, deployment workspaces, journal facts."""

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.monitoring.engine import EngineContainer

WORKSPACES_DIR = "workspaces"
JOURNAL_DIR = "deployments"
# States in which a container may serve (or come back by itself): never prune candidates.
LIVE_STATES = frozenset({"running", "restarting", "paused", "removing"})


@dataclass(frozen=True)
class JournalFact:
    """The few journal fields prune and inspect need (read-only view of agent/journal.py files)."""

    deployment_id: str
    resource_id: str
    running: bool
    image_id: str | None


def journal_facts(state_dir: Path) -> dict[str, JournalFact]:
    """Read the deployment journal without touching it (broken files are simply skipped)."""
    facts: dict[str, JournalFact] = {}
    directory = state_dir / JOURNAL_DIR
    if not directory.is_dir():
        return facts
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fact = JournalFact(
                deployment_id=str(data["deploymentId"]),
                resource_id=str(data.get("resourceId", "")),
                running=data.get("state") != "finished",
                image_id=data.get("imageId") or None,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        facts[fact.deployment_id] = fact
    return facts


def serving_deployments(
    containers: Iterable[EngineContainer], journal: dict[str, JournalFact]
) -> set[str]:
    """Deployments that are, or would be brought back as, a resource's current runtime.

    A resource's deployment with a live container serves. When a resource was stopped on
    purpose (``runtime stop``) none is live, so its newest containers' deployment counts
    instead: pruning it would delete the application. A deployment the agent is still applying
    counts too.
    """
    serving = {fact.deployment_id for fact in journal.values() if fact.running}
    live_resources: set[str] = set()
    # Creation times have one-second resolution: on a tie every newest deployment is kept.
    newest: dict[str, tuple[int, set[str]]] = {}
    for container in containers:
        if not container.managed or container.deployment_id is None:
            continue
        resource = container.resource_id or container.deployment_id
        if container.state in LIVE_STATES:
            serving.add(container.deployment_id)
            live_resources.add(resource)
        created, deployments = newest.get(resource, (-1, set()))
        if container.created > created:
            newest[resource] = (container.created, {container.deployment_id})
        elif container.created == created:
            deployments.add(container.deployment_id)
    for resource, (_created, deployments) in newest.items():
        if resource not in live_resources:
            serving.update(deployments)
    return serving


def directory_size(path: Path) -> int | None:
    """Disk bytes of the files under ``path`` (links not followed; 0 when it does not exist yet);
    None when it cannot be read."""
    if not path.exists():
        return 0
    total = 0
    try:
        for root, _dirs, files in os.walk(path, onerror=None):
            for name in files:
                try:
                    stat = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                total += stat.st_blocks * 512 if stat.st_blocks else stat.st_size
    except OSError:
        return None
    return total


@dataclass(frozen=True)
class Workspace:
    """A deployment's work directory under the state dir."""

    deployment_id: str
    path: Path
    bytes: int
    modified_at: float


def workspaces(state_dir: Path) -> list[Workspace]:
    """Every workspace directory, oldest first."""
    root = state_dir / WORKSPACES_DIR
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if not entry.is_dir() or entry.is_symlink():
            continue
        try:
            modified = entry.stat().st_mtime
        except OSError:
            continue
        found.append(Workspace(entry.name, entry, directory_size(entry) or 0, modified))
    return sorted(found, key=lambda w: w.modified_at)
