"""Engine calls that run a dependency resource: its volume, private network and container.

Everything goes through the agent's one engine client (``agent.runtime.engine``); every object
is labelled ``berth.*`` so capacity reports and cleanups find it.
"""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from agent.runtime import EngineError
from agent.runtime.engine import EngineClient, quoted
from agent.runtime.engine_ops import parse_repository_tag
from shared.messages import DependencyContainer, dependency_names

_JSON: Final = {"Content-Type": "application/json"}
_POLL_SECONDS: Final = 0.5


@dataclass(frozen=True)
class Running:
    """A dependency container that passed its health check."""

    container_id: str
    host_port: int | None


class DependencyOps:
    """Create, check and remove one dependency resource's Docker objects."""

    def __init__(self, api: EngineClient, extra_labels: dict[str, str]) -> None:
        self._api = api
        self._extra_labels = extra_labels

    async def _post(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> Any:
        return await self._api.json(
            "POST", path, params, body=json.dumps(body).encode(), headers=_JSON
        )

    async def _exists(self, path: str) -> dict[str, Any] | None:
        try:
            found = await self._api.json("GET", path)
        except EngineError as exc:
            if exc.not_found:
                return None
            raise
        return dict(found) if isinstance(found, dict) else None

    async def ensure(
        self, dependency_id: str, spec: DependencyContainer, timeout: float
    ) -> Running:
        """Create what is missing, start the container, wait until it is healthy."""
        name, volume, network = dependency_names(dependency_id)
        labels = {
            **spec.labels,
            **self._extra_labels,
            "berth.dependency-resource-id": dependency_id,
        }
        if await self._exists(f"/volumes/{quoted(volume)}") is None:
            await self._post("/volumes/create", {"Name": volume, "Labels": labels})
        if await self._exists(f"/networks/{quoted(network)}") is None:
            await self._post(
                "/networks/create",
                {"Name": network, "Driver": "bridge", "Labels": labels, "CheckDuplicate": True},
            )
        attrs = await self._exists(f"/containers/{quoted(name)}/json")
        if attrs is None:
            await self._create(name, volume, network, labels, spec)
        await self._api.read("POST", f"/containers/{quoted(name)}/start")
        try:
            return await self._wait_healthy(name, spec, timeout)
        except EngineError:
            # Stopped, not removed: no crash loop on the server, and the data stays for a retry.
            with contextlib.suppress(EngineError):  # the original reason matters more
                await self._api.read("POST", f"/containers/{quoted(name)}/stop", {"t": "5"})
            raise

    async def _create(
        self,
        name: str,
        volume: str,
        network: str,
        labels: dict[str, str],
        spec: DependencyContainer,
    ) -> None:
        host: dict[str, Any] = {
            "NetworkMode": network,
            "RestartPolicy": {"Name": "unless-stopped"},
            "Mounts": [{"Type": "volume", "Source": volume, "Target": spec.data_path}],
        }
        port_key = f"{spec.port}/tcp"
        config: dict[str, Any] = {
            "Image": spec.image,
            "Env": [f"{k}={v}" for k, v in spec.environment.items()],
            "Labels": labels,
            "StopSignal": spec.stop_signal,
            "ExposedPorts": {port_key: {}},
            "Healthcheck": {
                "Test": ["CMD", *spec.health_command],
                "Interval": 2_000_000_000,
                "Timeout": 5_000_000_000,
                "Retries": 3,
            },
            "HostConfig": host,
            "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [name]}}},
        }
        if spec.command:
            config["Cmd"] = spec.command
        if spec.publish_port:
            host["PortBindings"] = {port_key: [{"HostIp": "127.0.0.1", "HostPort": ""}]}
        if spec.cpus is not None:
            host["NanoCpus"] = int(spec.cpus * 1_000_000_000)
        if spec.memory_bytes is not None:
            host["Memory"] = spec.memory_bytes
        try:
            await self._post("/containers/create", config, {"name": name})
        except EngineError as exc:
            if not exc.not_found:
                raise
            # The image is not here: pull it (a registry, or a local image built beforehand).
            repository, tag = parse_repository_tag(spec.image)
            params = {"fromImage": repository, "tag": tag or "latest"}
            async for message in self._api.stream("POST", "/images/create", params, timeout=0):
                if message.get("error"):
                    raise EngineError(str(message["error"]).strip()) from exc
            await self._post("/containers/create", config, {"name": name})

    async def _wait_healthy(self, name: str, spec: DependencyContainer, timeout: float) -> Running:
        deadline = time.monotonic() + timeout
        port_key = f"{spec.port}/tcp"
        while True:
            attrs = await self._api.json("GET", f"/containers/{quoted(name)}/json")
            state = attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(port_key)
                host_port = int(bindings[0]["HostPort"]) if bindings else None
                return Running(str(attrs.get("Id")), host_port)
            # With its restart policy a crashing database loops between exited and restarting.
            crashed = state.get("Status") in ("exited", "dead", "restarting")
            if crashed or int(attrs.get("RestartCount") or 0) > 0:
                raise EngineError(
                    f"the database container exited (code {state.get('ExitCode')}): "
                    f"{str(state.get('Error') or '')[:500]}"
                )
            if time.monotonic() > deadline:
                raise EngineError(f"the database was not healthy within {timeout:.0f} s ({health})")
            await asyncio.sleep(_POLL_SECONDS)

    async def exec(self, name: str, command: list[str], env: dict[str, str]) -> tuple[int, str]:
        """Run ``command`` in the container; its exit code and output (stdout and stderr)."""
        created = await self._post(
            f"/containers/{quoted(name)}/exec",
            {
                "Cmd": command,
                "Env": [f"{k}={v}" for k, v in env.items()],
                "AttachStdout": True,
                "AttachStderr": True,
            },
        )
        exec_id = quoted(str(created["Id"]))
        raw = await self._api.read(
            "POST",
            f"/exec/{exec_id}/start",
            body=json.dumps({"Detach": False, "Tty": False}).encode(),
            headers=_JSON,
        )
        info = await self._api.json("GET", f"/exec/{exec_id}/json")
        return int(info.get("ExitCode") or 0), _demux(raw)

    async def rotate(
        self, dependency_id: str, spec: DependencyContainer, timeout: float
    ) -> Running:
        """Set the new password in the database, then recreate the container with ``spec``."""
        name, _, _ = dependency_names(dependency_id)
        change = _password_change(spec)
        if change is not None:
            command, env = change
            code, output = await self.exec(name, command, env)
            if code != 0:
                raise EngineError(f"changing the password failed ({code}): {output[-500:]}")
        # The container's settings must match the new secret (Redis takes it as an argument,
        # MariaDB's health check logs in with it); the volume keeps the data.
        await self._api.read("DELETE", f"/containers/{quoted(name)}", {"force": "1", "v": "0"})
        return await self.ensure(dependency_id, spec, timeout)

    async def remove(self, dependency_id: str, keep_data: bool) -> None:
        """Remove the container and network (and the volume unless ``keep_data``); gone is fine."""
        name, volume, network = dependency_names(dependency_id)
        paths = [(f"/containers/{quoted(name)}", {"force": "1", "v": "0"})]
        paths.append((f"/networks/{quoted(network)}", {}))
        if not keep_data:
            paths.append((f"/volumes/{quoted(volume)}", {}))
        for path, params in paths:
            if path.startswith("/networks/"):
                await self._disconnect_all(network)
            try:
                await self._api.read("DELETE", path, params)
            except EngineError as exc:
                if not exc.not_found:
                    raise

    async def _disconnect_all(self, network: str) -> None:
        # Apps once bound to it may still be attached (unbound, not redeployed yet).
        found = await self._exists(f"/networks/{quoted(network)}")
        for container_id in (found or {}).get("Containers") or {}:
            try:
                await self._post(
                    f"/networks/{quoted(network)}/disconnect",
                    {"Container": container_id, "Force": True},
                )
            except EngineError as exc:
                if not exc.not_found:
                    raise


def _demux(raw: bytes) -> str:
    """The text of a non-TTY exec stream (8-byte frame headers dropped)."""
    out: list[bytes] = []
    at = 0
    while at + 8 <= len(raw):
        size = int.from_bytes(raw[at + 4 : at + 8], "big")
        out.append(raw[at + 8 : at + 8 + size])
        at += 8 + size
    return b"".join(out).decode("utf-8", "replace")


def _password_change(spec: DependencyContainer) -> tuple[list[str], dict[str, str]] | None:
    """The in-container command that sets the new password (none for Redis: its password is
    a server argument, applied by recreating the container)."""
    env = spec.environment
    if spec.kind == "postgres":
        # Through the local socket (trusted); psql quotes :'pw' as a literal itself.
        script = (
            'printf \'ALTER ROLE "%s" PASSWORD :%s;\\n\' "$U" "\'pw\'" | '
            'psql -v ON_ERROR_STOP=1 -q -v pw="$NEWPW" -U "$U" -d "$D"'
        )
        values = {
            "U": env["POSTGRES_USER"],
            "D": env["POSTGRES_DB"],
            "NEWPW": env["POSTGRES_PASSWORD"],
        }
        return ["sh", "-c", script], values
    if spec.kind == "mysql":
        # As root through the local socket; generated passwords are URL-safe (no quotes).
        script = "mariadb -e \"ALTER USER '$U'@'%' IDENTIFIED BY '$NEWPW'\""
        return ["sh", "-c", script], {"U": env["MARIADB_USER"], "NEWPW": env["MARIADB_PASSWORD"]}
    return None
