"""Docker engine access through the docker SDK; every blocking call runs in a worker thread."""

import asyncio
import threading

import docker
import docker.errors
import requests.exceptions

from agent.runtime import RuntimeUnavailable

_TIMEOUT_SECONDS = 10

_UNREACHABLE = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class DockerRuntime:
    """The real runtime: talks to the local Docker engine (``DOCKER_HOST`` honoured)."""

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> docker.DockerClient:
        # Creating the client talks to the engine (API version negotiation), so it happens
        # lazily in a worker thread, never on the event loop.
        with self._lock:
            if self._client is None:
                self._client = docker.from_env(timeout=_TIMEOUT_SECONDS)
            return self._client

    def _version_sync(self) -> str:
        try:
            return str(self._get_client().version().get("Version", "unknown"))
        except _UNREACHABLE as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    def _ping_sync(self) -> None:
        try:
            self._get_client().ping()
        except _UNREACHABLE as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def version(self) -> str:
        """Return the engine version."""
        return await asyncio.to_thread(self._version_sync)

    async def ping(self) -> None:
        """Check the engine answers."""
        await asyncio.to_thread(self._ping_sync)

    async def close(self) -> None:
        """Close the client's connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
