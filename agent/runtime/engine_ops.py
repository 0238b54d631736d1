"""Every engine call the agent makes, async on the engine client (``agent.runtime.engine``).

Routine calls (version, list, inspect, df, info, images, removals) and the deployment calls
(pull, build, create, start, stop), each sending what the docker SDK sends for the same call
(tests/unit/agent/test_engine_ops.py compares the requests) and failing with the same
``RuntimeFailed`` messages. What the SDK applies from the docker client configuration
(``~/.docker/config.json``: registry credentials, credential helpers, proxies) is not
reimplemented: when it holds any, the SDK still serves pulls, builds and runs (``sdk_ops``,
imported only then).
"""

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final

from agent.runtime import BuildLine, EngineError, RunSpec, Started
from agent.runtime.build_context import context_archive
from agent.runtime.engine import EngineClient, filters, quoted
from agent.runtime.sdk_ops import SdkOperations, host_ports, port_taken
from shared.errors import RuntimeFailed

logger = logging.getLogger(__name__)

# What the engine answers a create for a missing image; the SDK's list (ImageNotFound).
# Pulls and builds go quiet for minutes (a large layer, a long RUN step).
SLOW_TIMEOUT_SECONDS: Final = 1800.0
_IMAGE_MISSING: Final = (
    "no such image",
    "not found: does not exist or no pull access",
    "repository does not exist",
    "was found but does not match the specified platform",
)


def parse_repository_tag(image: str) -> tuple[str, str | None]:
    """The SDK's split: ``repo@digest``, ``repo:tag`` (a port is not a tag), or no tag."""
    repository, at, digest = image.rpartition("@")
    if at:
        return repository, digest
    repository, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag
    return image, None


def client_config_in_effect() -> bool:
    """Whether the docker client configuration holds what the SDK would apply to a deployment.

    Registry credentials (``auths``, ``credsStore``, ``credHelpers``) and ``proxies``; the file is
    the SDK's: ``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``, else ``~/.dockercfg``.
    An unreadable file counts as in effect: the SDK decides then, as before.
    """
    directory = os.environ.get("DOCKER_CONFIG")
    home = os.path.expanduser("~")
    candidates = [os.path.join(directory, "config.json")] if directory else []
    candidates += [os.path.join(home, ".docker", "config.json"), os.path.join(home, ".dockercfg")]
    for path in candidates:
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    config = json.load(handle)
            except (OSError, ValueError):
                return True
            if not isinstance(config, dict):
                return True
            keys = ("auths", "credsStore", "credHelpers", "proxies")
            return any(config.get(key) for key in keys)
    return False


def create_config(spec: RunSpec, extra_labels: dict[str, str]) -> dict[str, Any]:
    """The ``POST /containers/create`` body the SDK sends for ``SdkOperations.run``."""
    restart = {"Name": "unless-stopped" if spec.restart else "no"}
    host: dict[str, Any] = {"NetworkMode": "default", "RestartPolicy": restart}
    config: dict[str, Any] = {
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Image": spec.image,
        "NetworkDisabled": False,
        "HostConfig": host,
        "Labels": {**spec.labels, **extra_labels},
    }
    if spec.environment:
        config["Env"] = [f"{key}={value}" for key, value in spec.environment.items()]
    if spec.command is not None:
        config["Entrypoint"] = ["/bin/sh", "-c"]
        config["Cmd"] = [spec.command]
    if spec.ports or spec.published:
        keys = sorted({f"{port}/tcp" for port in (*spec.ports, *(c for c, _ in spec.published))})
        config["ExposedPorts"] = {key: {} for key in keys}
        bindings: dict[str, list[dict[str, str]]] = {
            f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}] for port in spec.ports
        }
        for container_port, host_port in spec.published:
            bindings.setdefault(f"{container_port}/tcp", []).append(
                {"HostIp": "", "HostPort": str(host_port)}
            )
        host["PortBindings"] = bindings
    if spec.cpus is not None:
        host["NanoCpus"] = int(spec.cpus * 1_000_000_000)
    if spec.memory_bytes is not None:
        host["Memory"] = spec.memory_bytes
    if spec.mounts:
        host["Mounts"] = [
            {"Target": m.target, "Source": m.source, "Type": m.kind, "ReadOnly": m.read_only}
            for m in spec.mounts
        ]
    return config


def _flag(value: bool) -> str:
    return "1" if value else "0"


class EngineOperations:
    """The engine calls on the unix socket; the SDK only for what it alone applies."""

    def __init__(
        self,
        api: EngineClient,
        sdk: Callable[[], SdkOperations],
        extra_labels: dict[str, str],
    ) -> None:
        self._api = api
        self._sdk = sdk
        self._extra_labels = extra_labels

    async def close(self) -> None:
        """Nothing to let go: the engine client holds no connection between calls."""

    # Routine calls: raw engine answers, ``EngineError`` on failure.

    async def version(self) -> dict[str, Any]:
        """``GET /version``."""
        return dict(await self._api.json("GET", "/version"))

    async def ping(self) -> bool:
        """``GET /_ping``: whether the engine answered OK."""
        return await self._api.read("GET", "/_ping") == b"OK"

    async def info(self) -> dict[str, Any]:
        """``GET /info``."""
        return dict(await self._api.json("GET", "/info"))

    async def df(self) -> dict[str, Any]:
        """``GET /system/df`` (costly: seconds on a busy host)."""
        return dict(await self._api.json("GET", "/system/df"))

    async def containers(
        self,
        *,
        all: bool = False,
        size: bool = False,
        filters_: Mapping[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /containers/json`` (the SDK's query: no limit, command not truncated)."""
        params = {"limit": "-1", "all": _flag(all), "size": _flag(size), "trunc_cmd": "0"}
        return list(await self._api.json("GET", "/containers/json", params | filters(filters_)))

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return dict(await self._api.json("GET", f"/containers/{quoted(container_id)}/json"))

    async def images(self, *, filters_: Mapping[str, list[str]] | None = None) -> list[Any]:
        """``GET /images/json`` (top-level images, as the SDK asks)."""
        params = {"only_ids": "0", "all": "0"} | filters(filters_)
        return list(await self._api.json("GET", "/images/json", params))

    async def remove_container(self, container_id: str, *, force: bool = False) -> None:
        """``DELETE /containers/{id}`` (its anonymous volumes are kept)."""
        params = {"v": "0", "link": "0", "force": _flag(force)}
        await self._api.read("DELETE", f"/containers/{quoted(container_id)}", params)

    async def remove_image(self, image: str, *, force: bool = False) -> None:
        """``DELETE /images/{image}`` (untagged parents are pruned, as the engine does)."""
        params = {"force": _flag(force), "noprune": "0"}
        await self._api.read("DELETE", f"/images/{quoted(image)}", params)

    async def _inspect_image(self, image: str) -> dict[str, Any]:
        return dict(await self._api.json("GET", f"/images/{quoted(image)}/json"))

    async def _create_container(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        answer = await self._api.json(
            "POST",
            "/containers/create",
            {"name": name},
            body=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
        )
        if not isinstance(answer, dict):
            raise EngineError("the engine sent invalid JSON for a create")
        return answer

    async def _lifecycle(self, container_id: str, action: str, grace: int | None = None) -> None:
        # Stop and restart may take the grace period: the SDK's timeout plus that grace.
        params = {} if grace is None else {"t": str(grace)}
        timeout = None if grace is None else self._api.timeout + grace
        path = f"/containers/{quoted(container_id)}/{action}"
        await self._api.read("POST", path, params, timeout=timeout)

    # Deployment calls: ``RuntimeFailed`` on failure.

    async def image_id(self, image: str) -> str | None:
        """The local image's id, None when absent."""
        try:
            return str((await self._inspect_image(image)).get("Id"))
        except EngineError as exc:
            if exc.not_found:
                return None
            raise RuntimeFailed(f"cannot inspect image {image}: {exc}") from exc

    async def _pull(self, image: str) -> str:
        repository, tag = parse_repository_tag(image)
        tag = tag or "latest"
        params = {"tag": tag, "fromImage": repository}
        async for message in self._api.stream(
            "POST", "/images/create", params, timeout=SLOW_TIMEOUT_SECONDS
        ):
            # The SDK reads past these and fails at the lookup below with "No such image";
            # the engine's own reason says more.
            if message.get("error"):
                raise EngineError(str(message["error"]).strip())
        separator = "@" if tag.startswith("sha256:") else ":"
        return str((await self._inspect_image(f"{repository}{separator}{tag}")).get("Id"))

    async def pull(self, image: str) -> str:
        """Pull ``image`` (no tag means latest); its id."""
        if client_config_in_effect():
            return await asyncio.to_thread(self._sdk().pull, image)
        try:
            return await self._pull(image)
        except EngineError as exc:
            raise RuntimeFailed(f"cannot pull image {image}: {exc}") from exc

    async def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build ``context`` into ``tag``, output lines to ``on_line``; the image id."""
        # Path arithmetic only (relpath reads the working directory, nothing on disk).
        relative = os.path.relpath(os.path.join(context, dockerfile), context)  # noqa: ASYNC240
        if client_config_in_effect() or relative.startswith(".."):
            # A Dockerfile outside the context: the SDK sends it under a random name.
            return await asyncio.to_thread(
                self._sdk().build, context, dockerfile, target, tag, on_line
            )
        dockerfile = relative if os.path.isabs(dockerfile) else dockerfile
        params = {
            "t": tag,
            "q": "False",
            "nocache": "False",
            "rm": "True",
            "forcerm": "True",
            "pull": "False",
            "dockerfile": dockerfile,
        }
        if self._extra_labels:
            params["labels"] = json.dumps(self._extra_labels)
        if target is not None:
            params["target"] = target
        last_error = ""
        try:
            with tempfile.TemporaryFile() as body:
                # Walking and tarring the context blocks: a worker thread does it.
                size = await asyncio.to_thread(_write_context, context, dockerfile, body)
                headers = {"Content-Type": "application/tar", "Content-Length": str(size)}
                async for chunk in self._api.stream(
                    "POST",
                    "/build",
                    params,
                    body=body,
                    headers=headers,
                    timeout=SLOW_TIMEOUT_SECONDS,
                ):
                    if "error" in chunk:
                        last_error = str(chunk.get("error", "")).strip()
                        on_line(last_error)
                        continue
                    for line in str(chunk.get("stream", "")).splitlines():
                        if line.strip():
                            on_line(line.rstrip())
        except (EngineError, OSError) as exc:
            raise RuntimeFailed(f"docker build failed: {exc}") from exc
        if last_error:
            raise RuntimeFailed(f"docker build failed: {last_error}")
        image = await self.image_id(tag)
        if image is None:
            raise RuntimeFailed(f"docker build produced no image {tag}")
        return image

    async def remove_image_quietly(self, tag: str) -> None:
        """Force-remove ``tag``, logging the outcome (a canceled build's image)."""
        try:
            await self.remove_image(tag, force=True)
            logger.info("removed image %s of a canceled build", tag)
        except EngineError as exc:
            if exc.not_found:
                logger.info("a canceled build left no image %s", tag)
            else:
                logger.warning("could not remove image %s of a canceled build: %s", tag, exc)

    async def _create(self, spec: RunSpec) -> str:
        config = create_config(spec, self._extra_labels)
        try:
            return str((await self._create_container(spec.name, config))["Id"])
        except EngineError as exc:
            # As the SDK's containers.run: a missing image is pulled, then created again.
            if not exc.not_found or not any(text in str(exc).lower() for text in _IMAGE_MISSING):
                raise
        await self._pull(spec.image)
        return str((await self._create_container(spec.name, config))["Id"])

    async def run(self, spec: RunSpec) -> Started:
        """Create and start a container (the image is pulled when absent)."""
        if client_config_in_effect():
            return await asyncio.to_thread(self._sdk().run, spec)
        try:
            container_id = await self._create(spec)
            for network in spec.networks:
                # Joined before the start, so the app never runs without its database's network.
                await self._api.read(
                    "POST",
                    f"/networks/{quoted(network)}/connect",
                    body=json.dumps({"Container": container_id}).encode(),
                    headers={"Content-Type": "application/json"},
                )
            await self._lifecycle(container_id, "start")
            attrs = await self.inspect_container(container_id)
            ports = host_ports(attrs)
        except (EngineError, KeyError) as exc:
            raise port_taken(spec, str(exc)) or RuntimeFailed(
                f"cannot start container {spec.name}: {exc}"
            ) from exc
        container_id = str(attrs.get("Id") or container_id)
        missing = [p for p in spec.ports if p not in ports]
        if missing:
            status = (attrs.get("State") or {}).get("Status")
            raise RuntimeFailed(
                f"container {spec.name} has no host port for {missing} (state {status})",
                details={"containerId": container_id},
            )
        return Started(container_id=container_id, name=spec.name, host_ports=ports)

    async def create_volume(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """``POST /volumes/create`` (an existing volume of that name is answered as is)."""
        body = json.dumps({"Name": name, "Labels": labels}).encode()
        headers = {"Content-Type": "application/json"}
        return dict(
            await self._api.json("POST", "/volumes/create", body=body, headers=headers) or {}
        )

    async def list_volumes(
        self, *, filters_: Mapping[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /volumes``."""
        found = await self._api.json("GET", "/volumes", filters(filters_))
        return list((found or {}).get("Volumes") or [])

    async def remove_volume(self, name: str) -> None:
        """``DELETE /volumes/{name}`` (never forced)."""
        await self._api.read("DELETE", f"/volumes/{quoted(name)}")

    async def act(self, container_id: str, action: str, grace: float) -> None:
        """``stop``, ``start``, ``restart`` or ``remove`` (forced) a container."""
        try:
            if action == "remove":
                await self.remove_container(container_id, force=True)
            elif action == "start":
                await self._lifecycle(container_id, "start")
            else:
                await self._lifecycle(container_id, action, int(grace + 0.999))
        except EngineError as exc:
            if not exc.not_found:
                raise RuntimeFailed(f"cannot {action} container {container_id}: {exc}") from exc
            if action in ("remove", "stop"):
                return
            raise RuntimeFailed(f"container {container_id} does not exist") from None


def _write_context(context: Path, dockerfile: str, body: IO[bytes]) -> int:
    context_archive(context, dockerfile, body)
    size = body.tell()
    body.seek(0)
    return size
