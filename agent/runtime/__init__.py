"""The container runtime seam: what the agent needs from Docker, as a Protocol."""

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from shared.messages import ManagedContainer

MANAGED_LABEL = "berth.managed"
RESOURCE_LABEL = "berth.resource-id"
DEPLOYMENT_LABEL = "berth.deployment-id"
REPLICA_LABEL = "berth.replica"
HOSTNAMES_LABEL = "berth.hostnames"
PATH_PREFIX_LABEL = "berth.path-prefix"
# JSON list of the resource's domain routes (``DomainRoute``), to re-create them like the rest.
DOMAINS_LABEL = "berth.domain-routes"
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


class EngineError(Exception):
    """The engine answered a call with an error status (``status``), answered with something
    that is not its API, or could not be reached (``status`` 0): the engine client's one error.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def not_found(self) -> bool:
        """404: no such container or image."""
        return self.status == 404


@dataclass(frozen=True)
class ContainerInfo:
    """What the log reader needs to know about one container of a resource."""

    container_id: str
    deployment_id: str | None
    created: int
    running: bool

    @property
    def short_id(self) -> str:
        """The 12-character id shown in entries and cursors."""
        return self.container_id[:12]


class LogBody(Protocol):
    """An open log response: its raw body as it arrives (``content.iter_any()``), then closed."""

    @property
    def content(self) -> "ByteStream": ...

    def close(self) -> None: ...


class ByteStream(Protocol):
    """The body reader of a ``LogBody``."""

    def iter_any(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class MountSpec:
    """A volume or host directory mounted into a container (already checked by the caller)."""

    kind: Literal["volume", "bind"]
    source: str
    target: str
    read_only: bool = False


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
    # Docker networks joined besides the default bridge (bound dependency resources').
    networks: tuple[str, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    # Serving containers come back after a crash or reboot; a task run's container must not.
    restart: bool = True
    # (container port, host port) published on every address: the network profile's hostPort.
    published: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Started:
    """A container that was started: its id and the host port assigned to each container port."""

    container_id: str
    name: str
    host_ports: dict[int, int]


@dataclass(frozen=True)
class ContainerEvent:
    """A change of one managed container's state, as the engine announced it."""

    container_id: str
    resource_id: str
    # The engine's action: start, die, stop, destroy, pause, unpause.
    action: str


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


class ContainerRuntime(Protocol):
    """Everything the agent does on the container engine: deployments, builds, logs,
    monitoring, capacity and prune all go through this seam (engine failures of the raw calls
    raise ``EngineError``; deployment calls raise ``RuntimeFailed``)."""

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

    def container_events(self, since: float) -> AsyncIterator[ContainerEvent]:
        """This server's managed containers starting, stopping and going away, from ``since``
        (a unix time) on, until the engine's stream ends; raise ``RuntimeFailed`` when it
        cannot be followed."""
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

    async def log_sources(self, resource_id: str) -> list[ContainerInfo]:
        """Every container (any state) of ``resource_id`` this agent owns; raise
        ``EngineError`` when the engine does not answer."""
        ...

    async def uses_tty(self, container_id: str) -> bool:
        """Whether the container has a TTY (its log is one raw stream without frame headers)."""
        ...

    async def open_logs(
        self, container_id: str, *, follow: bool, tail: int | None, since: str | None
    ) -> LogBody:
        """Start reading a container's log (timestamped, both streams); the caller reads and
        closes it. Raise ``EngineError`` on failure."""
        ...

    async def wait_exit(self, container_id: str) -> int:
        """Wait until the container exits and return its exit code (task runs); raise
        ``EngineError`` on failure."""
        ...

    async def exec_open(
        self, container_id: str, command: list[str], environment: Mapping[str, str]
    ) -> tuple[str, LogBody]:
        """Start ``command`` in a running container (exec task runs); its exec id and its
        multiplexed output for the caller to read and close. Raise ``EngineError``."""
        ...

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """An exec's exit code, or None while it still runs; raise ``EngineError``."""
        ...

    async def info(self) -> dict[str, Any]:
        """The engine's ``/info`` (monitoring reads its data root)."""
        ...

    async def disk_usage(self) -> dict[str, Any]:
        """The engine's ``/system/df`` (costly: seconds on a busy host)."""
        ...

    async def engine_containers(
        self, *, all: bool, size: bool, filters: Mapping[str, list[str]] | None
    ) -> list[dict[str, Any]]:
        """Containers as the engine lists them (``/containers/json``), this server's or not."""
        ...

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """A container as the engine describes it (``/containers/{id}/json``)."""
        ...

    async def dangling_images(self) -> list[dict[str, Any]]:
        """Untagged images no tag points to."""
        ...

    async def remove_unused(self, *, container_id: str = "", image_id: str = "") -> None:
        """Remove a stopped container or an unused image, never forced (prune)."""
        ...

    async def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create the named volume with ``labels`` unless it exists; ``RuntimeFailed`` else."""
        ...

    async def volumes(self, label_filters: list[str]) -> list[dict[str, Any]]:
        """The engine's volumes matching every ``key=value`` label (``/volumes``' entries)."""
        ...

    async def remove_volume(self, name: str) -> None:
        """Remove an unused named volume; ``EngineError`` when in use or refused."""
        ...
