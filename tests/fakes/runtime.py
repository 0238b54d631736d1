"""FakeRuntime and FakeEdge: in-memory ContainerRuntime and Edge for unit tests of agent logic."""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.runtime import (
    DEPLOYMENT_LABEL,
    REPLICA_LABEL,
    RESOURCE_LABEL,
    BuildLine,
    ContainerEvent,
    ContainerInfo,
    EngineError,
    LogBody,
    RunSpec,
    RuntimeUnavailable,
    Started,
)
from shared.errors import RuntimeFailed
from shared.messages import ContainerState, ManagedContainer
from shared.messages.deploy import DomainRoute


@dataclass
class FakeContainer:
    """One fake container."""

    container_id: str
    spec: RunSpec
    host_ports: dict[int, int]
    state: ContainerState = "running"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeRuntime:
    """Answers like a Docker engine, or like a missing one when ``available`` is False.

    ``calls`` records every mutating operation in order, e.g. ``("run", name)``.
    """

    def __init__(self, *, available: bool = True, version: str = "99.0-fake") -> None:
        self.available = available
        self._version = version
        self.closed = False
        self.images: dict[str, str] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[str, str]] = []
        self.listings = 0  # list_managed calls: lets tests wait for periodic checks to run
        self.fail_run: str | None = None
        self.volume_labels: dict[str, dict[str, str]] = {}
        self.volume_created: dict[str, str] = {}  # RFC 3339, as the engine reports it
        self.volumes_in_use: set[str] = set()
        self._next = 0
        # What ``container_events`` yields: tests announce changes with ``announce``.
        self.events: asyncio.Queue[ContainerEvent] = asyncio.Queue()

    def _check(self) -> None:
        if not self.available:
            raise RuntimeUnavailable("Docker engine unreachable: fake")

    async def version(self) -> str:
        """Return the fake engine version."""
        self._check()
        return self._version

    async def ping(self) -> None:
        """Succeed unless unavailable."""
        self._check()

    async def close(self) -> None:
        """Record the close."""
        self.closed = True

    async def image_id(self, image: str) -> str | None:
        """Return the id of a known image."""
        return self.images.get(image)

    async def pull(self, image: str) -> str:
        """Pretend to pull: every image can be pulled."""
        self.calls.append(("pull", image))
        self.images[image] = f"sha256:{len(self.images):064d}"
        return self.images[image]

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Pretend to build: the Dockerfile must exist."""
        self.calls.append(("build", tag))
        if not (context / dockerfile).is_file():
            raise RuntimeFailed(f"docker build failed: no {dockerfile}")
        on_line(f"Step 1/1 : built {tag}")
        self.images[tag] = f"sha256:{len(self.images):064d}"
        return self.images[tag]

    async def run(self, spec: RunSpec) -> Started:
        """Create a running fake container with invented host ports."""
        self._check()
        self.calls.append(("run", spec.name))
        if self.fail_run is not None:
            raise RuntimeFailed(self.fail_run)
        if any(c.spec.name == spec.name for c in self.containers.values()):
            raise RuntimeFailed(f"container name {spec.name} is already in use")
        self._next += 1
        container_id = f"{self._next:064x}"
        ports = {port: 40000 + self._next * 10 + i for i, port in enumerate(spec.ports)}
        self.containers[container_id] = FakeContainer(container_id, spec, ports)
        return Started(container_id, spec.name, ports)

    def add(self, spec: RunSpec, state: ContainerState = "running") -> FakeContainer:
        """Seed a container directly (for tests that start from an existing state)."""
        self._next += 1
        container_id = f"{self._next:064x}"
        ports = {port: 40000 + self._next * 10 + i for i, port in enumerate(spec.ports)}
        self.containers[container_id] = FakeContainer(container_id, spec, ports, state)
        return self.containers[container_id]

    def _managed(self, c: FakeContainer) -> ManagedContainer:
        labels = c.spec.labels
        replica = labels.get(REPLICA_LABEL, "0")
        return ManagedContainer(
            container_id=c.container_id,
            name=c.spec.name,
            resource_id=labels.get(RESOURCE_LABEL, ""),
            deployment_id=labels.get(DEPLOYMENT_LABEL, ""),
            replica=int(replica) if replica.isdigit() else 0,
            state=c.state,
            image=c.spec.image,
            host_port=next(iter(c.host_ports.values()), None),
            created_at=c.created_at,
        )

    async def list_managed(self, resource_id: str | None = None) -> list[ManagedContainer]:
        """Managed containers, optionally of one resource."""
        self._check()
        self.listings += 1
        return [
            self._managed(c)
            for c in self.containers.values()
            if c.spec.labels.get("berth.managed") == "true"
            and (resource_id is None or c.spec.labels.get(RESOURCE_LABEL) == resource_id)
        ]

    def announce(self, container: FakeContainer, action: str) -> None:
        """Send a container event, as the engine does after a change."""
        resource_id = container.spec.labels.get(RESOURCE_LABEL, "")
        self.events.put_nowait(ContainerEvent(container.container_id, resource_id, action))

    async def container_events(self, since: float) -> AsyncIterator[ContainerEvent]:
        """The announced events, until the test stops the agent."""
        self._check()
        while True:
            yield await self.events.get()

    async def labels(self, container_id: str) -> dict[str, str]:
        """A container's labels."""
        found = self.containers.get(container_id)
        return dict(found.spec.labels) if found else {}

    async def stop(self, container_id: str, grace_seconds: float) -> None:
        """Mark exited."""
        self.calls.append(("stop", self._name(container_id)))
        if container_id in self.containers:
            self.containers[container_id].state = "exited"

    async def start(self, container_id: str) -> None:
        """Mark running."""
        self.calls.append(("start", self._name(container_id)))
        self._get(container_id).state = "running"

    async def restart(self, container_id: str, grace_seconds: float) -> None:
        """Mark running."""
        self.calls.append(("restart", self._name(container_id)))
        self._get(container_id).state = "running"

    async def remove(self, container_id: str) -> None:
        """Forget the container."""
        self.calls.append(("remove", self._name(container_id)))
        self.containers.pop(container_id, None)

    async def log_sources(self, resource_id: str) -> list[ContainerInfo]:
        """The resource's containers (no logs: see ``open_logs``)."""
        self._check()
        return [
            ContainerInfo(
                c.container_id,
                c.spec.labels.get(DEPLOYMENT_LABEL) or None,
                int(c.created_at.timestamp()),
                c.state == "running",
            )
            for c in self.containers.values()
            if c.spec.labels.get(RESOURCE_LABEL) == resource_id
        ]

    async def uses_tty(self, container_id: str) -> bool:
        """Never."""
        return False

    async def open_logs(
        self, container_id: str, *, follow: bool, tail: int | None, since: str | None
    ) -> LogBody:
        """A fake engine keeps no logs."""
        raise EngineError(f"no logs in the fake runtime for {container_id}", 404)

    async def wait_exit(self, container_id: str) -> int:
        """A fake container has no process to wait for: it exits at once with 0."""
        self._check()
        if container_id not in self.containers:
            raise EngineError(f"no such container {container_id}", 404)
        self.containers[container_id].state = "exited"
        return 0

    async def exec_open(
        self, container_id: str, command: list[str], environment: Mapping[str, str]
    ) -> tuple[str, Any]:
        """Exec runs are tested on the real engine only."""
        raise EngineError("the fake runtime does not exec", 501)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """Exec runs are tested on the real engine only."""
        raise EngineError("the fake runtime does not exec", 501)

    async def info(self) -> dict[str, Any]:
        """A fake data root."""
        self._check()
        return {"DockerRootDir": "/var/lib/docker"}

    async def disk_usage(self) -> dict[str, Any]:
        """Nothing used."""
        self._check()
        return {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": []}

    async def engine_containers(
        self, *, all: bool, size: bool, filters: Mapping[str, list[str]] | None
    ) -> list[dict[str, Any]]:
        """The containers in the engine's list shape (filters not applied)."""
        self._check()
        return [
            {
                "Id": c.container_id,
                "Names": [f"/{c.spec.name}"],
                "Labels": dict(c.spec.labels),
                "State": c.state,
                "Image": c.spec.image,
                "Created": int(c.created_at.timestamp()),
            }
            for c in self.containers.values()
            if all or c.state == "running"
        ]

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """The labels and state of a container."""
        found = self.containers.get(container_id)
        if found is None:
            raise EngineError(f"No such container: {container_id}", 404)
        return {
            "Id": container_id,
            "Config": {"Labels": dict(found.spec.labels), "Tty": False},
            "State": {"Status": found.state, "Pid": 0},
        }

    async def dangling_images(self) -> list[dict[str, Any]]:
        """None."""
        return []

    async def remove_unused(self, *, container_id: str = "", image_id: str = "") -> None:
        """Forget a stopped container."""
        if container_id:
            self.containers.pop(container_id, None)

    async def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        """Remember the volume (first labels win, as the engine keeps an existing volume's)."""
        self.calls.append(("ensure_volume", name))
        self.volume_labels.setdefault(name, dict(labels))

    async def volumes(self, label_filters: list[str]) -> list[dict[str, Any]]:
        """Volumes carrying every ``key=value`` label."""
        wanted = [f.split("=", 1) for f in label_filters]
        return [
            {"Name": name, "Labels": labels, "CreatedAt": self.volume_created.get(name)}
            for name, labels in self.volume_labels.items()
            if all(labels.get(key) == value for key, value in wanted)
        ]

    async def remove_volume(self, name: str) -> None:
        """Forget the volume."""
        self.calls.append(("remove_volume", name))
        if name in self.volumes_in_use:
            raise EngineError(f"volume {name} is in use", 409)
        self.volume_labels.pop(name, None)

    def _get(self, container_id: str) -> FakeContainer:
        if container_id not in self.containers:
            raise RuntimeFailed(f"container {container_id} does not exist")
        return self.containers[container_id]

    def _name(self, container_id: str) -> str:
        found = self.containers.get(container_id)
        return found.spec.name if found else container_id


class FakeEdge:
    """Edge proxy in memory; records calls into a shared ``calls`` list when given one."""

    def __init__(self, calls: list[tuple[str, str]] | None = None) -> None:
        self.routes: dict[str, tuple[list[str], list[str]]] = {}
        self.domains: dict[str, list[DomainRoute]] = {}
        self.calls = calls if calls is not None else []
        self.fail: str | None = None
        # Resources whose bindings the edge does not know (as after an agent restart).
        self.unknown_bindings: set[str] = set()

    async def ensure_server(self) -> None:
        """Nothing to do."""
        if self.fail:
            raise RuntimeFailed(self.fail)

    async def set_upstreams(
        self,
        resource_id: str,
        hostnames: list[str],
        path_prefix: str,
        upstreams: list[str],
        domains: Sequence[DomainRoute] = (),
    ) -> None:
        """Record the route."""
        if self.fail:
            raise RuntimeFailed(self.fail)
        self.calls.append(("switch", ",".join(upstreams)))
        self.routes[resource_id] = (list(hostnames), list(upstreams))
        self.domains[resource_id] = list(domains)
        self.unknown_bindings.discard(resource_id)

    async def remove_route(self, resource_id: str) -> None:
        """Drop the route."""
        self.routes.pop(resource_id, None)

    async def current_upstreams(self, resource_id: str) -> list[str] | None:
        """The recorded upstreams."""
        if self.fail:
            raise RuntimeFailed(self.fail)
        route = self.routes.get(resource_id)
        return list(route[1]) if route else None

    def bindings_known(self, resource_id: str) -> bool:
        """False for the resources in ``unknown_bindings``."""
        return resource_id not in self.unknown_bindings
