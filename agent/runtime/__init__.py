"""The container runtime seam: what the agent needs from Docker, as a Protocol."""

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.messages import ManagedContainer

MANAGED_LABEL = "berth.managed"
RESOURCE_LABEL = "berth.resource-id"
DEPLOYMENT_LABEL = "berth.deployment-id"
REPLICA_LABEL = "berth.replica"
HOSTNAMES_LABEL = "berth.hostnames"
PATH_PREFIX_LABEL = "berth.path-prefix"
INTERNAL_PORT_LABEL = "berth.internal-port"
# The server whose agent created the container. Several agents may share one Docker engine
# (tests, a lab box): each routes, samples, lists and prunes only its own containers.
SERVER_LABEL = "berth.server-id"


def foreign(labels: Mapping[str, str], server_id: str | None) -> bool:
    """Whether a container belongs to another server's agent (it names a different server).

    A container without the label predates it and stays this agent's, so an upgrade does not
    orphan running workloads.
    """
    owner = labels.get(SERVER_LABEL)
    return server_id is not None and bool(owner) and owner != server_id


class RuntimeUnavailable(Exception):
    """The container engine cannot be reached."""


@dataclass(frozen=True)
class RunSpec:
    """One container to create and start."""

    name: str
    image: str
    command: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory_bytes: int | None = None
    # Container ports published on 127.0.0.1 with an ephemeral host port each.
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Started:
    """A container that was started: its id and the host port assigned to each container port."""

    container_id: str
    name: str
    host_ports: dict[int, int]


BuildLine = Callable[[str], None]


def relay_build_output(chunks: Iterable[Mapping[str, Any]], on_line: BuildLine) -> str:
    """Hand a build's progress stream to ``on_line`` line by line; return the last error the
    engine reported in it ("" if none: the build itself may still have produced no image)."""
    last_error = ""
    for chunk in chunks:
        if "error" in chunk:
            last_error = str(chunk.get("error", "")).strip()
            on_line(last_error)
            continue
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                on_line(line.rstrip())
    return last_error


def extra_labels_from_env() -> dict[str, str]:
    """Parse ``BERTH_AGENT_EXTRA_LABELS`` ("k=v,k2=v2"): labels put on every container."""
    raw = os.environ.get("BERTH_AGENT_EXTRA_LABELS", "")
    labels: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key.strip():
            labels[key.strip()] = value.strip()
    return labels


class ContainerRuntime(Protocol):
    """Operations the agent performs on the container engine (blocking work off the loop)."""

    async def version(self) -> str:
        """Return the engine version; raise ``RuntimeUnavailable`` if unreachable."""
        ...

    async def ping(self) -> None:
        """Check the engine answers; raise ``RuntimeUnavailable`` if not."""
        ...

    async def close(self) -> None:
        """Release the client."""
        ...

    async def image_id(self, image: str) -> str | None:
        """Return the local image's id, or None when it is not present."""
        ...

    async def pull(self, image: str) -> str:
        """Pull ``image`` and return its id; raise ``RuntimeFailed`` on failure."""
        ...

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build ``context`` into ``tag`` streaming output lines; return the image id."""
        ...

    async def run(self, spec: RunSpec) -> Started:
        """Create and start a container; raise ``RuntimeFailed`` on failure."""
        ...

    async def list_managed(self, resource_id: str | None = None) -> list[ManagedContainer]:
        """Return Berth-managed containers (label ``berth.managed=true``), all states."""
        ...

    async def labels(self, container_id: str) -> dict[str, str]:
        """Return a container's labels (empty when it is gone)."""
        ...

    async def stop(self, container_id: str, grace_seconds: float) -> None:
        """Stop a container (SIGTERM, then SIGKILL after the grace period)."""
        ...

    async def start(self, container_id: str) -> None:
        """Start a stopped container."""
        ...

    async def restart(self, container_id: str, grace_seconds: float) -> None:
        """Restart a container."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove a container (forced); a missing container is not an error."""
        ...
