"""The Docker Engine API calls the log reader needs, over the unix socket, each on its own
connection with a minimal HTTP/1.1 reader (see ``LogResponse``).

Not the docker SDK: its log generator runs in a thread, yields one chunk per line and tops out
near 40k lines/s here; reading the raw response in bulk on the event loop is several times
faster. Not aiohttp for the JSON calls either: they are a few per log request, and leaving
aiohttp out of the agent saves about 10 MiB of its resident memory (bench/agent_cost.py).
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

from agent.runtime import DEPLOYMENT_LABEL, RESOURCE_LABEL, foreign

DEFAULT_SOCKET: Final = "/var/run/docker.sock"
_CONNECT_SECONDS: Final = 10.0
_CALL_SECONDS: Final = 30.0
_READ_BYTES: Final = 256 * 1024
_ERROR_BYTES: Final = 64 * 1024


class DockerApiError(Exception):
    """The engine answered with an error status or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ContainerInfo:
    """What the reader needs to know about one container of a resource."""

    container_id: str
    deployment_id: str | None
    created: int
    running: bool

    @property
    def short_id(self) -> str:
        """The 12-character id shown in entries and cursors."""
        return self.container_id[:12]


def socket_path() -> str:
    """The engine's socket: ``DOCKER_HOST`` when it is a ``unix://`` URL, else the default."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else DEFAULT_SOCKET


class DockerLogApi:
    """JSON calls and log streams on the engine socket, each on its own connection."""

    def __init__(self, path: str | None = None, server_id: str | None = None) -> None:
        self._path = path or socket_path()
        self._server_id = server_id

    async def close(self) -> None:
        """Nothing is kept open between calls; each log stream is closed by its reader."""

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        target = f"{path}?{urlencode(params)}" if params else path
        try:
            async with asyncio.timeout(_CALL_SECONDS):
                response = await LogResponse.open(self._path, target)
                try:
                    body = b"".join([piece async for piece in response.iter_any()])
                finally:
                    response.close()
        except (OSError, TimeoutError) as exc:
            raise DockerApiError(f"the container engine is unreachable: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise DockerApiError(f"the container engine sent invalid JSON: {exc}") from exc

    async def containers(self, resource_id: str) -> list[ContainerInfo]:
        """Every container (any state) labelled with ``resource_id``."""
        filters = json.dumps({"label": [f"{RESOURCE_LABEL}={resource_id}"]})
        rows = await self._get_json("/containers/json", {"all": "1", "filters": filters})
        return [
            ContainerInfo(
                container_id=str(row["Id"]),
                deployment_id=(row.get("Labels") or {}).get(DEPLOYMENT_LABEL) or None,
                created=int(row.get("Created") or 0),
                running=row.get("State") == "running",
            )
            for row in rows
            # A resource's containers made by another server's agent are that agent's to read.
            if not foreign(row.get("Labels") or {}, self._server_id)
        ]

    async def uses_tty(self, container_id: str) -> bool:
        """Whether the container has a TTY (its log is one raw stream without frame headers)."""
        attrs = await self._get_json(f"/containers/{quote(container_id)}/json", {})
        return bool((attrs.get("Config") or {}).get("Tty"))

    async def open_logs(
        self, container_id: str, *, follow: bool, tail: int | None, since: str | None
    ) -> "LogResponse":
        """Start reading a container's log; the caller reads and closes the response."""
        params = {
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1",
            "follow": "1" if follow else "0",
            "tail": "all" if tail is None else str(tail),
        }
        if since is not None:
            params["since"] = since
        target = f"/containers/{quote(container_id)}/logs?{urlencode(params)}"
        return await LogResponse.open(self._path, target)


class LogResponse:
    """One log request on its own socket, its chunked body undone in bulk.

    Not aiohttp: Docker sends every log line as its own HTTP chunk, and aiohttp spends about
    5 us per chunk in Python callbacks - more than everything else the agent does per line.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._chunked = False
        self._pending = b""
        self._remaining = 0  # bytes of the current chunk still to come
        self._need_crlf = False  # the CRLF after a chunk's data
        self._done = False

    @classmethod
    async def open(cls, socket: str, target: str) -> "LogResponse":
        """Send the request and read the response head; raise ``DockerApiError`` on >= 400."""
        try:
            async with asyncio.timeout(_CONNECT_SECONDS):
                reader, writer = await asyncio.open_unix_connection(socket)
                response = cls(reader, writer)
                head = f"GET {target} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
                writer.write(head.encode())
                status = await response._read_head()
                if status >= 400:
                    text = (await reader.read(_ERROR_BYTES)).decode("utf-8", "replace")
                    response.close()
                    raise DockerApiError(text[:500], status)
                return response
        except (OSError, TimeoutError, ValueError) as exc:
            raise DockerApiError(f"the container engine is unreachable: {exc}") from exc

    async def _read_head(self) -> int:
        status_line = await self._reader.readline()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError("not an HTTP response")
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"transfer-encoding":
                self._chunked = b"chunked" in value.lower()
        return int(parts[1])

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces of any size, until the stream ends."""
        while not self._done:
            data = await self._reader.read(_READ_BYTES)
            if not data:
                return
            body = self._dechunk(data) if self._chunked else data
            if body:
                yield body

    @property
    def content(self) -> "LogResponse":
        """The body reader (``content.iter_any()``, as on an aiohttp response)."""
        return self

    def _dechunk(self, data: bytes) -> bytes:
        if self._done:
            return b""  # the trailer after the last chunk
        buf = self._pending + data if self._pending else data
        pos, size_of = 0, len(buf)
        out: list[bytes] = []
        while pos < size_of:
            if self._remaining:
                take = min(self._remaining, size_of - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                self._need_crlf = self._remaining == 0
            elif self._need_crlf:
                if size_of - pos < 2:
                    break
                pos += 2
                self._need_crlf = False
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if size == 0:
                    self._done = True
                    break
                self._remaining = size
        self._pending = buf[pos:]
        return b"".join(out)

    def close(self) -> None:
        """Close the socket (Docker stops following this reader)."""
        self._writer.close()
