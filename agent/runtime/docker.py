"""Docker engine access; every blocking call runs in a worker thread.

When the engine is on a unix socket (the default), every call goes through the small stdlib
client there: the routine ones (version, ping, list, labels; monitoring's through
``api_client``) through ``engine_api``, pulls, builds, runs and lifecycle calls through
``engine_ops``. The docker SDK serves engines reached otherwise (tcp, ssh) and what only it
applies (registry credentials and proxies: ``engine_ops``); it is imported when
first needed, so most agents never load it (about 8 MiB: requests, urllib3, charset_normalizer).
"""

import asyncio
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.runtime import (
    DEPLOYMENT_LABEL,
    MANAGED_LABEL,
    REPLICA_LABEL,
    RESOURCE_LABEL,
    SERVER_LABEL,
    BuildLine,
    RunSpec,
    RuntimeUnavailable,
    Started,
    extra_labels_from_env,
    foreign,
)
from agent.runtime.engine_api import (
    EngineApi,
    EngineApiError,
    EngineNotFound,
    UnixEngineApi,
    local_socket,
)
from agent.runtime.engine_ops import EngineOperations
from agent.runtime.sdk_ops import SdkEngineApi, SdkOperations
from shared.errors import RuntimeFailed
from shared.messages import ContainerState, ManagedContainer

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 10
# Builds and pulls can take minutes; they get their own long-timeout client.
_SLOW_TIMEOUT_SECONDS = 1800
# As many connections as the agent has worker threads (agent/daemon.py), so parallel
# deployments neither queue on the pool nor churn connections.
_POOL_SIZE = 32
_STATES: frozenset[str] = frozenset(
    {"created", "running", "paused", "restarting", "exited", "dead", "removing"}
)

# What the routine calls raise when the engine is unreachable or refuses.
_ENGINE_FAILURES = (EngineApiError, OSError)


def _state(value: str) -> ContainerState:
    return value if value in _STATES else "dead"  # type: ignore[return-value]


def _created_at(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        # Docker gives nanoseconds ("2026-01-01T00:00:00.123456789Z"); Python takes micro.
        head, _, frac = raw.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        return None


def _managed_from_summary(summary: dict[str, Any]) -> ManagedContainer:
    """Build from one entry of ``GET /containers/json`` (no per-container inspect)."""
    labels = summary.get("Labels") or {}
    ports: dict[int, int] = {}
    for port in summary.get("Ports") or []:
        if port.get("Type") == "tcp" and port.get("PublicPort"):
            ports.setdefault(int(port["PrivatePort"]), int(port["PublicPort"]))
    internal = labels.get("berth.internal-port", "")
    host_port = ports.get(int(internal)) if internal.isdigit() else None
    if host_port is None and ports:
        host_port = next(iter(ports.values()))
    replica = labels.get(REPLICA_LABEL, "0")
    created = summary.get("Created")
    names = summary.get("Names") or [""]
    return ManagedContainer(
        container_id=summary.get("Id") or "",
        name=str(names[0]).lstrip("/"),
        resource_id=labels.get(RESOURCE_LABEL, "")[:40],
        deployment_id=labels.get(DEPLOYMENT_LABEL, "")[:40],
        replica=int(replica) if replica.isdigit() else 0,
        state=_state(summary.get("State") or "dead"),
        image=str(summary.get("Image") or "")[:512],
        host_port=host_port,
        created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
    )


class _Operations(Protocol):
    """Pulls, builds, runs and lifecycle calls (blocking): ``EngineOperations`` or the SDK's."""

    def image_id(self, image: str) -> str | None: ...

    def pull(self, image: str) -> str: ...

    def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str: ...

    def remove_image_quietly(self, tag: str) -> None: ...

    def run(self, spec: RunSpec) -> Started: ...

    def act(self, container_id: str, action: str, grace: float) -> None: ...


class DockerRuntime:
    """The real runtime: talks to the local Docker engine (``DOCKER_HOST`` honoured)."""

    def __init__(
        self, extra_labels: dict[str, str] | None = None, server_id: str | None = None
    ) -> None:
        self._client: docker.DockerClient | None = None
        self._slow: docker.DockerClient | None = None
        self._api: EngineApi | None = None
        self._ops: EngineOperations | None = None
        self._sdk_ops: SdkOperations | None = None
        self._lock = threading.Lock()
        self._extra_labels = extra_labels_from_env() if extra_labels is None else extra_labels
        self.server_id = server_id
        if server_id is not None:
            # Every container this agent creates names its server (see ``foreign``).
            self._extra_labels = {**self._extra_labels, SERVER_LABEL: server_id}

    def _get_client(self) -> "docker.DockerClient":
        # Creating the client talks to the engine (API version negotiation), so it happens
        # lazily in a worker thread, never on the event loop.
        import docker

        with self._lock:
            if self._client is None:
                self._client = docker.from_env(timeout=_TIMEOUT_SECONDS, max_pool_size=_POOL_SIZE)
            return self._client

    def _get_slow(self) -> "docker.DockerClient":
        import docker

        with self._lock:
            if self._slow is None:
                self._slow = docker.from_env(
                    timeout=_SLOW_TIMEOUT_SECONDS, max_pool_size=_POOL_SIZE
                )
            return self._slow

    def api_client(self) -> EngineApi:
        """The shared client for the routine engine calls, here and in other agent parts.

        Call it, and use the client, from a worker thread only: its calls block.
        """
        with self._lock:
            if self._api is None:
                # DOCKER_HOST is read when the engine is first needed, as the SDK does.
                path = local_socket()
                if path is not None:
                    self._api = UnixEngineApi(path, timeout=_TIMEOUT_SECONDS)
                else:
                    self._api = SdkEngineApi(lambda: self._get_client().api)
            return self._api

    def _get_sdk_ops(self) -> SdkOperations:
        with self._lock:
            if self._sdk_ops is None:
                self._sdk_ops = SdkOperations(self._get_client, self._get_slow, self._extra_labels)
            return self._sdk_ops

    def _operations(self) -> _Operations:
        # Chosen with api_client, when the engine is first needed (DOCKER_HOST read then).
        api = self.api_client()
        if not isinstance(api, UnixEngineApi):
            return self._get_sdk_ops()
        with self._lock:
            if self._ops is None:
                slow = UnixEngineApi(api.path, timeout=_SLOW_TIMEOUT_SECONDS)
                self._ops = EngineOperations(api, slow, self._get_sdk_ops, self._extra_labels)
            return self._ops

    def _version_sync(self) -> str:
        try:
            return str(self.api_client().version().get("Version", "unknown"))
        except _ENGINE_FAILURES as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    def _ping_sync(self) -> None:
        try:
            self.api_client().ping()
        except _ENGINE_FAILURES as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def version(self) -> str:
        """Return the engine version."""
        return await asyncio.to_thread(self._version_sync)

    async def ping(self) -> None:
        """Check the engine answers."""
        await asyncio.to_thread(self._ping_sync)

    async def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self._client, self._slow):
            if client is not None:
                await asyncio.to_thread(client.close)
        self._client = self._slow = None

    def _image_id_sync(self, image: str) -> str | None:
        return self._operations().image_id(image)

    async def image_id(self, image: str) -> str | None:
        """Return the local image's id, or None."""
        return await asyncio.to_thread(self._image_id_sync, image)

    def _pull_sync(self, image: str) -> str:
        return self._operations().pull(image)

    async def pull(self, image: str) -> str:
        """Pull an image and return its id."""
        return await asyncio.to_thread(self._pull_sync, image)

    def _build_sync(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        return self._operations().build(context, dockerfile, target, tag, on_line)

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build an image from a directory, streaming its output lines to ``on_line``.

        Canceling returns at once, but the engine's classic builder cannot be interrupted
        through the API: the build finishes in its worker thread and the image it tagged is
        removed then, so a canceled deployment leaves no image behind.
        """
        work = asyncio.ensure_future(
            asyncio.to_thread(self._build_sync, context, dockerfile, target, tag, on_line)
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(lambda _: self._discard_build(tag))
            raise

    def _discard_build(self, tag: str) -> None:
        # Runs on the loop when the abandoned build ends. The removal blocks, and the loop may
        # be shutting down by then, so it gets its own short-lived daemon thread.
        threading.Thread(
            target=self._remove_image_quietly, args=(tag,), name="discard-build", daemon=True
        ).start()

    def _remove_image_quietly(self, tag: str) -> None:
        self._operations().remove_image_quietly(tag)

    def _run_sync(self, spec: RunSpec) -> Started:
        return self._operations().run(spec)

    async def run(self, spec: RunSpec) -> Started:
        """Create and start a container, publishing its ports on 127.0.0.1."""
        return await asyncio.to_thread(self._run_sync, spec)

    def _list_sync(self, resource_id: str | None) -> list[ManagedContainer]:
        filters = [f"{MANAGED_LABEL}=true"]
        if resource_id is not None:
            filters.append(f"{RESOURCE_LABEL}={resource_id}")
        try:
            # The list endpoint alone: the SDK's containers.list() inspects every container
            # afterwards and fails outright when one is removed in between.
            found = self.api_client().containers(all=True, filters={"label": filters})
        except _ENGINE_FAILURES as exc:
            raise RuntimeFailed(f"cannot list containers: {exc}") from exc
        return [
            _managed_from_summary(c)
            for c in found
            if not foreign(c.get("Labels") or {}, self.server_id)
        ]

    async def list_managed(self, resource_id: str | None = None) -> list[ManagedContainer]:
        """Return Berth-managed containers, optionally of one resource."""
        return await asyncio.to_thread(self._list_sync, resource_id)

    def _labels_sync(self, container_id: str) -> dict[str, str]:
        try:
            attrs = self.api_client().inspect_container(container_id)
        except EngineNotFound:
            return {}
        except _ENGINE_FAILURES as exc:
            raise RuntimeFailed(f"cannot inspect container {container_id}: {exc}") from exc
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    async def labels(self, container_id: str) -> dict[str, str]:
        """Return a container's labels."""
        return await asyncio.to_thread(self._labels_sync, container_id)

    def _act_sync(self, container_id: str, action: str, grace: float) -> None:
        self._operations().act(container_id, action, grace)

    async def _act(self, container_id: str, action: str, grace: float = 0.0) -> None:
        # Stopping may legitimately take the whole grace period: give the client room for it.
        await asyncio.to_thread(self._act_sync, container_id, action, grace)

    async def stop(self, container_id: str, grace_seconds: float) -> None:
        """Stop a container."""
        await self._act(container_id, "stop", grace_seconds)

    async def start(self, container_id: str) -> None:
        """Start a container."""
        await self._act(container_id, "start")

    async def restart(self, container_id: str, grace_seconds: float) -> None:
        """Restart a container."""
        await self._act(container_id, "restart", grace_seconds)

    async def remove(self, container_id: str) -> None:
        """Force-remove a container; missing is fine."""
        await self._act(container_id, "remove")
