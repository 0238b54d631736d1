"""The Docker engine runtime: every engine call the agent makes, through one client.

On a unix socket (the default) every call is async on the agent's one engine client
(``agent.runtime.engine``, h11): deployments, builds, logs, monitoring. The docker SDK
serves only engines reached otherwise (``DOCKER_HOST=tcp://`` or ``ssh://``) and what only it
applies (registry credentials, credential helpers, proxies: ``engine_ops``); it is imported when
first needed, so most agents never load it.
"""

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
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
    ContainerEvent,
    ContainerInfo,
    EngineError,
    RunSpec,
    RuntimeUnavailable,
    Started,
    foreign,
)
from agent.runtime.engine import DEFAULT_SOCKET, EngineBody, EngineClient, local_socket, quoted
from agent.runtime.engine_ops import EngineOperations
from agent.runtime.sdk_ops import SdkEngine, SdkEngineApi, SdkOperations
from shared.errors import RuntimeFailed
from shared.messages import ContainerState, ManagedContainer

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)
_JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}

_TIMEOUT_SECONDS = 10
# The SDK's builds and pulls can take minutes; they get their own long-timeout client.
_SLOW_TIMEOUT_SECONDS = 1800
_STATES: frozenset[str] = frozenset(
    {"created", "running", "paused", "restarting", "exited", "dead", "removing"}
)

# The container events that can change where a resource's traffic goes.
_ROUTE_EVENTS: frozenset[str] = frozenset({"start", "die", "stop", "destroy", "pause", "unpause"})


def _state(value: str) -> ContainerState:
    return value if value in _STATES else "dead"  # type: ignore[return-value]


def _managed_from_summary(summary: dict[str, Any]) -> ManagedContainer:
    """Build from one entry of ``GET /containers/json`` (no per-container inspect)."""
    labels = summary.get("Labels") or {}
    ports: dict[int, int] = {}
    for port in sorted(summary.get("Ports") or [], key=lambda p: p.get("IP") != "127.0.0.1"):
        # Loopback first: the edge's port; a hostPort is also bound on every address.
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


class Backend(Protocol):
    """The engine calls, async: ``EngineOperations`` (unix socket) or ``SdkEngine``."""

    async def close(self) -> None: ...

    async def version(self) -> dict[str, Any]: ...

    async def ping(self) -> bool: ...

    async def info(self) -> dict[str, Any]: ...

    async def df(self) -> dict[str, Any]: ...

    async def containers(
        self,
        *,
        all: bool = False,
        size: bool = False,
        filters_: Mapping[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]: ...

    async def inspect_container(self, container_id: str) -> dict[str, Any]: ...

    async def images(self, *, filters_: Mapping[str, list[str]] | None = None) -> list[Any]: ...

    async def remove_container(self, container_id: str, *, force: bool = False) -> None: ...

    async def remove_image(self, image: str, *, force: bool = False) -> None: ...

    async def image_id(self, image: str) -> str | None: ...

    async def pull(self, image: str) -> str: ...

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str: ...

    async def remove_image_quietly(self, tag: str) -> None: ...

    async def run(self, spec: RunSpec) -> Started: ...

    async def act(self, container_id: str, action: str, grace: float) -> None: ...

    async def create_volume(self, name: str, labels: dict[str, str]) -> dict[str, Any]: ...

    async def list_volumes(
        self, *, filters_: Mapping[str, list[str]] | None = None
    ) -> list[dict[str, Any]]: ...

    async def remove_volume(self, name: str) -> None: ...


class DockerRuntime:
    """The real runtime: talks to the local Docker engine (``DOCKER_HOST`` honoured)."""

    def __init__(
        self, extra_labels: Mapping[str, str] | None = None, server_id: str | None = None
    ) -> None:
        self._client: docker.DockerClient | None = None
        self._slow: docker.DockerClient | None = None
        self._engine: EngineClient | None = None
        self._backend: Backend | None = None
        self._sdk_ops: SdkOperations | None = None
        self._lock = threading.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._extra_labels = dict(extra_labels or {})
        self.server_id = server_id
        if server_id is not None:
            # Every container this agent creates names its server (see ``foreign``).
            self._extra_labels = {**self._extra_labels, SERVER_LABEL: server_id}

    def _get_client(self) -> "docker.DockerClient":
        # Only for engines the client cannot reach; creating it talks to the engine, so it
        # happens lazily in a worker thread, never on the event loop.
        import docker

        with self._lock:
            if self._client is None:
                self._client = docker.from_env(timeout=_TIMEOUT_SECONDS)
            return self._client

    def _get_slow(self) -> "docker.DockerClient":
        import docker

        with self._lock:
            if self._slow is None:
                self._slow = docker.from_env(timeout=_SLOW_TIMEOUT_SECONDS)
            return self._slow

    def _get_sdk_ops(self) -> SdkOperations:
        with self._lock:
            if self._sdk_ops is None:
                self._sdk_ops = SdkOperations(self._get_client, self._get_slow, self._extra_labels)
            return self._sdk_ops

    def _local(self) -> EngineClient:
        # Logs are read on the local socket even when DOCKER_HOST names another engine.
        if self._engine is None:
            self._engine = EngineClient(local_socket() or DEFAULT_SOCKET, _TIMEOUT_SECONDS)
        return self._engine

    def engine_client(self) -> EngineClient | None:
        """The engine client on the local socket; None when ``DOCKER_HOST`` names another."""
        return self._local() if local_socket() is not None else None

    def backend(self) -> Backend:
        """The engine calls (chosen when first needed: ``DOCKER_HOST`` is read then)."""
        if self._backend is None:
            if local_socket() is not None:
                self._backend = EngineOperations(
                    self._local(), self._get_sdk_ops, self._extra_labels
                )
            else:
                api = SdkEngineApi(lambda: self._get_client().api)
                self._backend = SdkEngine(api, self._get_sdk_ops)
        return self._backend

    async def version(self) -> str:
        """Return the engine version."""
        try:
            return str((await self.backend().version()).get("Version", "unknown"))
        except EngineError as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def ping(self) -> None:
        """Check the engine answers."""
        try:
            await self.backend().ping()
        except EngineError as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def close(self) -> None:
        """Close the engine calls' backend and the SDK's connection pools."""
        if self._backend is not None:
            await self._backend.close()
            self._backend = None
        for client in (self._client, self._slow):
            if client is not None:
                await asyncio.to_thread(client.close)
        self._client = self._slow = None

    async def image_id(self, image: str) -> str | None:
        """Return the local image's id, or None."""
        return await self.backend().image_id(image)

    async def pull(self, image: str) -> str:
        """Pull an image and return its id."""
        return await self.backend().pull(image)

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build an image from a directory, streaming its output lines to ``on_line``.

        Canceling returns at once, but the engine's classic builder cannot be interrupted
        through the API: the build is left to finish and the image it tagged is removed then,
        so a canceled deployment leaves no image behind.
        """
        backend = self.backend()
        work = asyncio.ensure_future(backend.build(context, dockerfile, target, tag, on_line))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(lambda _: self._discard_build(backend, tag))
            raise

    def _discard_build(self, backend: Backend, tag: str) -> None:
        # Runs on the loop when the abandoned build ends; the task is kept until it is done.
        task = asyncio.get_running_loop().create_task(backend.remove_image_quietly(tag))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def run(self, spec: RunSpec) -> Started:
        """Create and start a container, publishing its ports on 127.0.0.1."""
        return await self.backend().run(spec)

    async def list_managed(self, resource_id: str | None = None) -> list[ManagedContainer]:
        """Return Berth-managed containers, optionally of one resource."""
        filters = [f"{MANAGED_LABEL}=true"]
        if resource_id is not None:
            filters.append(f"{RESOURCE_LABEL}={resource_id}")
        try:
            # The list endpoint alone: the SDK's containers.list() inspects every container
            # afterwards and fails outright when one is removed in between.
            found = await self.backend().containers(all=True, filters_={"label": filters})
        except EngineError as exc:
            raise RuntimeFailed(f"cannot list containers: {exc}") from exc
        return [
            _managed_from_summary(c)
            for c in found
            if not foreign(c.get("Labels") or {}, self.server_id)
        ]

    async def container_events(self, since: float) -> AsyncIterator[ContainerEvent]:
        """Follow the engine's container events for this server's managed containers.

        Only on the local socket (the agent's own engine client); an engine reached through
        the SDK gives no events and the agent's periodic route check covers it.
        """
        if local_socket() is None:
            return
        stream = self._local().events(
            since,
            {
                "type": ["container"],
                "label": [f"{MANAGED_LABEL}=true"],
                "event": sorted(_ROUTE_EVENTS),
            },
        )
        try:
            async for event in stream:
                actor = event.get("Actor") or {}
                attributes = actor.get("Attributes") or {}
                resource_id = attributes.get(RESOURCE_LABEL)
                if not resource_id or foreign(attributes, self.server_id):
                    continue
                yield ContainerEvent(
                    container_id=str(actor.get("ID") or event.get("id") or ""),
                    resource_id=str(resource_id),
                    action=str(event.get("Action") or event.get("status") or ""),
                )
        except EngineError as exc:
            raise RuntimeFailed(f"cannot follow the engine's events: {exc}") from exc

    async def labels(self, container_id: str) -> dict[str, str]:
        """Return a container's labels."""
        try:
            attrs = await self.backend().inspect_container(container_id)
        except EngineError as exc:
            if exc.not_found:
                return {}
            raise RuntimeFailed(f"cannot inspect container {container_id}: {exc}") from exc
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    async def stop(self, container_id: str, grace_seconds: float) -> None:
        """Stop a container."""
        await self.backend().act(container_id, "stop", grace_seconds)

    async def start(self, container_id: str) -> None:
        """Start a container."""
        await self.backend().act(container_id, "start", 0.0)

    async def restart(self, container_id: str, grace_seconds: float) -> None:
        """Restart a container."""
        await self.backend().act(container_id, "restart", grace_seconds)

    async def remove(self, container_id: str) -> None:
        """Force-remove a container; missing is fine."""
        await self.backend().act(container_id, "remove", 0.0)

    async def log_sources(self, resource_id: str) -> list[ContainerInfo]:
        """Every container (any state) labelled with ``resource_id``, this server's only."""
        rows = await self.backend().containers(
            all=True, filters_={"label": [f"{RESOURCE_LABEL}={resource_id}"]}
        )
        return [
            ContainerInfo(
                container_id=str(row["Id"]),
                deployment_id=(row.get("Labels") or {}).get(DEPLOYMENT_LABEL) or None,
                created=int(row.get("Created") or 0),
                running=row.get("State") == "running",
            )
            for row in rows
            # A resource's containers made by another server's agent are that agent's to read.
            if not foreign(row.get("Labels") or {}, self.server_id)
        ]

    async def uses_tty(self, container_id: str) -> bool:
        """Whether the container has a TTY (its log is one raw stream without frame headers)."""
        attrs = await self.backend().inspect_container(container_id)
        return bool((attrs.get("Config") or {}).get("Tty"))

    async def open_logs(
        self, container_id: str, *, follow: bool, tail: int | None, since: str | None
    ) -> EngineBody:
        """Start reading a container's log; the caller reads and closes it."""
        params = {
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1",
            "follow": "1" if follow else "0",
            "tail": "all" if tail is None else str(tail),
        }
        if since is not None:
            params["since"] = since
        # A followed log may stay quiet for hours: no read timeout.
        path = f"/containers/{quoted(container_id)}/logs"
        return EngineBody(await self._local().open("GET", path, params, timeout=0))

    async def wait_exit(self, container_id: str) -> int:
        """Wait until the container exits; its exit code (no time limit: the caller sets one)."""
        path = f"/containers/{quoted(container_id)}/wait"
        answer = await self._local().json("POST", path, timeout=0)
        return int((answer or {}).get("StatusCode", -1))

    async def exec_open(
        self, container_id: str, command: list[str], environment: Mapping[str, str]
    ) -> tuple[str, EngineBody]:
        """Start ``command`` in a running container (no TTY); its exec id and its multiplexed
        output for the caller to read and close."""
        created = await self._local().json(
            "POST",
            f"/containers/{quoted(container_id)}/exec",
            body=json.dumps(
                {
                    "Cmd": command,
                    "Env": [f"{key}={value}" for key, value in environment.items()],
                    "AttachStdout": True,
                    "AttachStderr": True,
                }
            ).encode(),
            headers=_JSON_HEADERS,
        )
        exec_id = str((created or {}).get("Id") or "")
        # The command may stay quiet for as long as its timeout: no read timeout.
        response = await self._local().open(
            "POST",
            f"/exec/{quoted(exec_id)}/start",
            body=json.dumps({"Detach": False, "Tty": False}).encode(),
            headers=_JSON_HEADERS,
            timeout=0,
        )
        return exec_id, EngineBody(response)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """An exec's exit code, or None while it runs."""
        info = await self._local().json("GET", f"/exec/{quoted(exec_id)}/json")
        if not isinstance(info, dict) or info.get("Running"):
            return None
        code = info.get("ExitCode")
        return int(code) if code is not None else None

    async def info(self) -> dict[str, Any]:
        """``GET /info`` (monitoring: the data root)."""
        return await self.backend().info()

    async def disk_usage(self) -> dict[str, Any]:
        """``GET /system/df`` (costly: seconds on a busy host)."""
        return await self.backend().df()

    async def engine_containers(
        self, *, all: bool, size: bool, filters: Mapping[str, list[str]] | None
    ) -> list[dict[str, Any]]:
        """``GET /containers/json`` as the engine lists them (monitoring, capacity, prune)."""
        return await self.backend().containers(all=all, size=size, filters_=filters)

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return await self.backend().inspect_container(container_id)

    async def dangling_images(self) -> list[dict[str, Any]]:
        """Untagged images no tag points to."""
        return list(await self.backend().images(filters_={"dangling": ["true"]}))

    async def remove_unused(self, *, container_id: str = "", image_id: str = "") -> None:
        """Remove a stopped container or an unused image, never forced (prune)."""
        if container_id:
            await self.backend().remove_container(container_id, force=False)
        if image_id:
            await self.backend().remove_image(image_id, force=False)

    async def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create the named volume (labelled, plus this agent's labels) unless it exists.

        The engine answers a create of an existing volume with that volume, so this is safe to
        repeat; a volume of the same name without Berth's labels is refused, never adopted.
        """
        try:
            found = await self.backend().create_volume(name, {**labels, **self._extra_labels})
        except EngineError as exc:
            raise RuntimeFailed(f"cannot create volume {name}: {exc}") from exc
        if (found.get("Labels") or {}).get(MANAGED_LABEL) != "true":
            raise RuntimeFailed(
                f"volume {name} exists but was not created by Berth: refusing to mount it",
                details={"reasonCode": "volume-not-managed"},
            )

    async def volumes(self, label_filters: list[str]) -> list[dict[str, Any]]:
        """Volumes with every label of ``label_filters`` (``key=value``)."""
        found = await self.backend().list_volumes(filters_={"label": label_filters})
        # Several agents may share one engine: each sees only the volumes it created.
        return [v for v in found if not foreign(v.get("Labels") or {}, self.server_id)]

    async def remove_volume(self, name: str) -> None:
        """Remove a named volume (the engine refuses one a container uses)."""
        await self.backend().remove_volume(name)
