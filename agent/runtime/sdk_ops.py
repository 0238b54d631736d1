"""Docker engine access through the docker SDK, for what only the SDK knows how to do.

``DOCKER_HOST=tcp://`` (TLS client certificates) and ``ssh://`` engines go through the SDK,
which knows how to reach them; so do pulls, builds and runs when the docker client
configuration (``~/.docker``) holds registry credentials, credential helpers or proxies, which
the SDK applies and ``engine_ops`` does not. The SDK is imported on first use only (it costs
about 8 MiB of resident memory and a connection pool's threads), its blocking calls run in
worker threads, and its errors become the engine client's ``EngineError``.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.runtime import BuildLine, EngineError, RunSpec, Started, relay_build_output
from shared.errors import RuntimeFailed

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)
T = TypeVar("T")


def sdk_failures() -> tuple[type[Exception], ...]:
    """What the SDK raises when the engine is unreachable or refuses (imports the SDK)."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def host_ports(attrs: dict[str, Any]) -> dict[int, int]:
    """The loopback host port bound to each published container tcp port, from an inspect
    (the first binding when none is on 127.0.0.1: a hostPort is also bound on every address)."""
    ports: dict[int, int] = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        if not bindings or not key.endswith("/tcp"):
            continue
        bound = [b for b in bindings if b.get("HostPort")]
        loopback = [b for b in bound if b.get("HostIp") == "127.0.0.1"]
        if loopback or bound:
            ports[int(key.split("/")[0])] = int((loopback or bound)[0]["HostPort"])
    return ports


def sdk_ports(spec: RunSpec) -> dict[str, Any]:
    """The SDK's ``ports``: loopback with an ephemeral port, plus any hostPort everywhere."""
    ports: dict[str, Any] = {f"{port}/tcp": ("127.0.0.1", None) for port in spec.ports}
    for container_port, host_port in spec.published:
        key = f"{container_port}/tcp"
        ports[key] = [ports[key], host_port] if key in ports else host_port
    return ports


_PORT_TAKEN = ("port is already allocated", "address already in use")


def port_taken(spec: RunSpec, error: str) -> RuntimeFailed | None:
    """The clear failure of a container whose hostPort something else on the server holds."""
    if not spec.published or not any(text in error.lower() for text in _PORT_TAKEN):
        return None
    ports = ", ".join(str(host) for _, host in spec.published)
    return RuntimeFailed(
        f"host port {ports} is already in use on the server (host-port-in-use): free it or "
        "change the resource's networkProfile.hostPort",
        details={"reasonCode": "host-port-in-use"},
    )


class SdkEngineApi:
    """The routine calls through the SDK's low-level client (blocking), for engines not on a
    unix socket; ``SdkEngine`` runs them in worker threads."""

    def __init__(self, client: Callable[[], "docker.APIClient"]) -> None:
        self._client = client

    def _call(self, call: Callable[["docker.APIClient"], T]) -> T:
        import docker.errors

        try:
            return call(self._client())
        except docker.errors.NotFound as exc:
            raise EngineError(str(exc), 404) from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc), exc.status_code or 0) from exc
        except docker.errors.DockerException as exc:
            raise EngineError(str(exc)) from exc

    def version(self) -> dict[str, Any]:
        """``GET /version``."""
        return dict(self._call(lambda api: api.version()))

    def ping(self) -> bool:
        """``GET /_ping``."""
        return bool(self._call(lambda api: api.ping()))

    def info(self) -> dict[str, Any]:
        """``GET /info``."""
        return dict(self._call(lambda api: api.info()))

    def df(self) -> dict[str, Any]:
        """``GET /system/df``."""
        return dict(self._call(lambda api: api.df()))

    def containers(
        self, *, all: bool = False, size: bool = False, filters: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /containers/json``."""
        return list(self._call(lambda api: api.containers(all=all, size=size, filters=filters)))

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return dict(self._call(lambda api: api.inspect_container(container_id)))

    def images(self, *, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /images/json``."""
        return list(self._call(lambda api: api.images(filters=filters)))

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        """``DELETE /containers/{id}``."""
        self._call(lambda api: api.remove_container(container_id, v=False, force=force))

    def remove_image(self, image: str, *, force: bool = False) -> None:
        """``DELETE /images/{image}``."""
        self._call(lambda api: api.remove_image(image, force=force, noprune=False))

    def create_volume(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """``POST /volumes/create``."""
        return dict(self._call(lambda api: api.create_volume(name, labels=labels)))

    def volumes(self, *, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /volumes``."""
        found = self._call(lambda api: api.volumes(filters=filters))
        return list((found or {}).get("Volumes") or [])

    def remove_volume(self, name: str) -> None:
        """``DELETE /volumes/{name}``."""
        self._call(lambda api: api.remove_volume(name, force=False))


class SdkOperations:
    """Image and container operations through the SDK's high-level client (blocking)."""

    def __init__(
        self,
        client: Callable[[], "docker.DockerClient"],
        slow: Callable[[], "docker.DockerClient"],
        extra_labels: dict[str, str],
    ) -> None:
        self._client = client
        self._slow = slow
        self._extra_labels = extra_labels

    def image_id(self, image: str) -> str | None:
        """The local image's id, None when absent."""
        import docker.errors

        try:
            return str(self._client().images.get(image).id)
        except docker.errors.ImageNotFound:
            return None
        except sdk_failures() as exc:
            raise RuntimeFailed(f"cannot inspect image {image}: {exc}") from exc

    def pull(self, image: str) -> str:
        """Pull ``image``; its id."""
        try:
            # The SDK splits "repo:tag" and "repo@sha256:..." itself; no tag means latest.
            pulled = self._slow().images.pull(image)
        except sdk_failures() as exc:
            raise RuntimeFailed(f"cannot pull image {image}: {exc}") from exc
        return str(pulled.id)

    def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build ``context`` into ``tag``, output lines to ``on_line``; the image id."""
        try:
            stream = self._slow().api.build(
                path=str(context),
                dockerfile=dockerfile,
                target=target,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels=dict(self._extra_labels),
            )
            last_error = relay_build_output(stream, on_line)
        except sdk_failures() as exc:
            raise RuntimeFailed(f"docker build failed: {exc}") from exc
        if last_error:
            raise RuntimeFailed(f"docker build failed: {last_error}")
        image = self.image_id(tag)
        if image is None:
            raise RuntimeFailed(f"docker build produced no image {tag}")
        return image

    def remove_image_quietly(self, tag: str) -> None:
        """Force-remove ``tag``, logging the outcome (a canceled build's image)."""
        import docker.errors

        try:
            self._client().images.remove(tag, force=True)
            logger.info("removed image %s of a canceled build", tag)
        except docker.errors.ImageNotFound:
            logger.info("a canceled build left no image %s", tag)
        except sdk_failures():
            logger.warning("could not remove image %s of a canceled build", tag, exc_info=True)

    def run(self, spec: RunSpec) -> Started:
        """Create and start a container (the image is pulled when absent)."""
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "detach": True,
            "environment": dict(spec.environment),
            "labels": {**spec.labels, **self._extra_labels},
            "ports": sdk_ports(spec),
            "restart_policy": {"Name": "unless-stopped" if spec.restart else "no"},
        }
        if spec.command is not None:
            kwargs["entrypoint"] = ["/bin/sh", "-c"]
            kwargs["command"] = [spec.command]
        if spec.cpus is not None:
            kwargs["nano_cpus"] = int(spec.cpus * 1_000_000_000)
        if spec.memory_bytes is not None:
            kwargs["mem_limit"] = spec.memory_bytes
        if spec.mounts:
            import docker.types

            kwargs["mounts"] = [
                docker.types.Mount(m.target, m.source, type=m.kind, read_only=m.read_only)
                for m in spec.mounts
            ]
        try:
            container = self._client().containers.run(spec.image, **kwargs)
            for network in spec.networks:
                self._client().networks.get(network).connect(container)
            container.reload()
            ports = host_ports(container.attrs)
        except sdk_failures() as exc:
            raise port_taken(spec, str(exc)) or RuntimeFailed(
                f"cannot start container {spec.name}: {exc}"
            ) from exc
        missing = [p for p in spec.ports if p not in ports]
        if missing:
            raise RuntimeFailed(
                f"container {spec.name} has no host port for {missing} (state {container.status})",
                details={"containerId": container.id},
            )
        return Started(container_id=container.id or "", name=spec.name, host_ports=ports)

    def act(self, container_id: str, action: str, grace: float) -> None:
        """``stop``, ``start``, ``restart`` or ``remove`` (forced) a container."""
        import docker.errors

        try:
            if action == "remove":
                self._client().api.remove_container(container_id, force=True)
                return
            container = self._client().containers.get(container_id)
            if action == "stop":
                container.stop(timeout=int(grace + 0.999))
            elif action == "start":
                container.start()
            else:
                container.restart(timeout=int(grace + 0.999))
        except docker.errors.NotFound:
            if action in ("remove", "stop"):
                return
            raise RuntimeFailed(f"container {container_id} does not exist") from None
        except sdk_failures() as exc:
            raise RuntimeFailed(f"cannot {action} container {container_id}: {exc}") from exc


class SdkEngine:
    """``EngineOperations``' calls through the SDK, each in a worker thread."""

    def __init__(self, api: SdkEngineApi, ops: Callable[[], SdkOperations]) -> None:
        self._api = api
        self._ops = ops
        # Its own threads, not the loop's default pool: monitoring's worker threads wait on
        # these calls, and must never wait for a thread of their own pool.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="berth-sdk")

    async def _thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    async def close(self) -> None:
        """Let the pool's threads go (the SDK clients are closed by their owner)."""
        self._pool.shutdown(wait=False)

    async def version(self) -> dict[str, Any]:
        """``GET /version``."""
        return await self._thread(self._api.version)

    async def ping(self) -> bool:
        """``GET /_ping``."""
        return await self._thread(self._api.ping)

    async def info(self) -> dict[str, Any]:
        """``GET /info``."""
        return await self._thread(self._api.info)

    async def df(self) -> dict[str, Any]:
        """``GET /system/df``."""
        return await self._thread(self._api.df)

    async def containers(
        self,
        *,
        all: bool = False,
        size: bool = False,
        filters_: Mapping[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /containers/json``."""
        chosen = dict(filters_) if filters_ else None
        return await self._thread(lambda: self._api.containers(all=all, size=size, filters=chosen))

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return await self._thread(self._api.inspect_container, container_id)

    async def images(self, *, filters_: Mapping[str, list[str]] | None = None) -> list[Any]:
        """``GET /images/json``."""
        chosen = dict(filters_) if filters_ else None
        return await self._thread(lambda: self._api.images(filters=chosen))

    async def remove_container(self, container_id: str, *, force: bool = False) -> None:
        """``DELETE /containers/{id}``."""
        await self._thread(lambda: self._api.remove_container(container_id, force=force))

    async def remove_image(self, image: str, *, force: bool = False) -> None:
        """``DELETE /images/{image}``."""
        await self._thread(lambda: self._api.remove_image(image, force=force))

    async def image_id(self, image: str) -> str | None:
        """The local image's id, None when absent."""
        return await self._thread(self._ops().image_id, image)

    async def pull(self, image: str) -> str:
        """Pull ``image``; its id."""
        return await self._thread(self._ops().pull, image)

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build ``context`` into ``tag``; the image id."""
        return await self._thread(self._ops().build, context, dockerfile, target, tag, on_line)

    async def remove_image_quietly(self, tag: str) -> None:
        """Force-remove ``tag``, logging the outcome."""
        await self._thread(self._ops().remove_image_quietly, tag)

    async def run(self, spec: RunSpec) -> Started:
        """Create and start a container."""
        return await self._thread(self._ops().run, spec)

    async def act(self, container_id: str, action: str, grace: float) -> None:
        """``stop``, ``start``, ``restart`` or ``remove`` a container."""
        await self._thread(self._ops().act, container_id, action, grace)

    async def create_volume(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """``POST /volumes/create``."""
        return await self._thread(self._api.create_volume, name, labels)

    async def list_volumes(
        self, *, filters_: Mapping[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /volumes``."""
        chosen = dict(filters_) if filters_ else None
        return await self._thread(lambda: self._api.volumes(filters=chosen))

    async def remove_volume(self, name: str) -> None:
        """``DELETE /volumes/{name}``."""
        await self._thread(self._api.remove_volume, name)
