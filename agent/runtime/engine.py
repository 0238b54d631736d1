"""The agent's one Docker engine client: async HTTP on the engine's unix socket.

Every part of the agent that talks to the engine (deployments, builds, logs, monitoring) goes
through ``DockerRuntime``, which holds one of these: one HTTP implementation
(``agent.http_client``), one error type (``EngineError``, raised for an error status, an answer that
is not the engine's API, or an engine that cannot be reached). It asks for the engine's own API
version (``GET /version``, once), as the docker SDK did, and refuses engines older than 1.24.
"""

import asyncio
import codecs
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

from agent.http_client import Endpoint, Response, request, upgrade
from agent.runtime import EngineError
from agent.runtime.exec_stdin import ExecStdin

DEFAULT_SOCKET: Final = "/var/run/docker.sock"
MINIMUM_API_VERSION: Final = (1, 24)
_CONNECT_SECONDS: Final = 10.0
_ERROR_BYTES: Final = 64 * 1024


def local_socket(docker_host: str | None = None) -> str | None:
    """The engine's unix socket per ``DOCKER_HOST``; None when the engine is reached otherwise.

    As the docker SDK reads it: unset or empty means the default socket.
    """
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if not host:
        return DEFAULT_SOCKET
    path = host.removeprefix("unix://")
    return path if host.startswith("unix://") and path.startswith("/") else None


def quoted(name: str) -> str:
    """A container or image name as one path segment (``/`` and ``:`` kept, as the SDK does)."""
    return quote(name, safe="/:")


def filters(value: Mapping[str, list[str]] | None) -> dict[str, str]:
    """The ``filters`` query parameter (JSON), or nothing."""
    return {"filters": json.dumps(value)} if value else {}


class EngineClient:
    """Async calls on the engine's unix socket; create and use it on the agent's event loop."""

    def __init__(self, path: str = DEFAULT_SOCKET, timeout: float = 30.0) -> None:
        self.path = path
        # Each read of a call's answer (a follow or a build passes its own).
        self.timeout = timeout
        self._endpoint = Endpoint("docker", unix_path=path)
        self._prefix: str | None = None

    async def _api_prefix(self) -> str:
        # The engine's own API version, asked once; an engine that cannot answer is asked again
        # at the next call.
        if self._prefix is None:
            raw = await self.json("GET", "/version", versioned=False)
            version = str(raw.get("ApiVersion", "")) if isinstance(raw, dict) else ""
            major, _, minor = version.partition(".")
            if not (major.isdigit() and minor.isdigit()):
                raise EngineError(f"the engine sent no API version: {version!r}")
            if (int(major), int(minor)) < MINIMUM_API_VERSION:
                raise EngineError(f"the engine's API version {version} is too old")
            self._prefix = f"/v{version}"
        return self._prefix

    async def open(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        versioned: bool = True,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send a request; return its response (status below 400) for the caller to read and
        close. ``timeout`` bounds each read (None: the client's; 0: none, for follows)."""
        target = f"{await self._api_prefix()}{path}" if versioned else path
        if params:
            # Encoded here, as the SDK encodes it, and sent as is.
            target = f"{target}?{urlencode(dict(params))}"
        read = self.timeout if timeout is None else (timeout or None)
        try:
            response = await request(
                self._endpoint,
                method,
                target,
                headers=headers,
                body=body,
                connect_timeout=_CONNECT_SECONDS,
                read_timeout=read,
            )
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the container engine is unreachable: {exc!r}") from exc
        if response.status >= 400:
            raise await _refusal(response, target)
        return response

    async def read(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        versioned: bool = True,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """The whole body of a call."""
        response = await self.open(
            method,
            path,
            params,
            versioned=versioned,
            body=body,
            headers=headers,
            timeout=timeout,
        )
        try:
            return await response.read()
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the engine's answer to {path} broke off: {exc!r}") from exc
        finally:
            response.release()

    async def json(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        versioned: bool = True,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """A call's JSON answer."""
        raw = await self.read(
            method,
            path,
            params,
            versioned=versioned,
            body=body,
            headers=headers,
            timeout=timeout,
        )
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise EngineError(f"the engine sent invalid JSON for {path}: {exc}") from exc

    async def stream(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects of a progress stream (pull, build) as the engine sends them."""
        response = await self.open(
            method, path, params, body=body, headers=headers, timeout=timeout
        )
        # Objects may span chunks and one chunk may carry several: decode as the bytes come.
        decoder = json.JSONDecoder()
        text = codecs.getincrementaldecoder("utf-8")("replace")
        buffer = ""
        try:
            while True:
                chunk = await response.readany()
                buffer += text.decode(chunk, final=not chunk)
                while buffer := buffer.lstrip():
                    try:
                        item, end = decoder.raw_decode(buffer)
                    except ValueError:
                        if not chunk:
                            raise EngineError(
                                f"the engine sent invalid JSON for {path}: {buffer[:200]!r}"
                            ) from None
                        break
                    buffer = buffer[end:]
                    if isinstance(item, dict):
                        yield item
                if not chunk:
                    return
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the engine's answer to {path} broke off: {exc!r}") from exc
        finally:
            response.close()

    def events(
        self, since: float, event_filters: Mapping[str, list[str]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The engine's events from ``since`` (a unix time) on, as they happen, until the
        connection ends; no read timeout (a quiet engine sends nothing for hours)."""
        params = {"since": f"{since:.9f}", **filters(event_filters)}
        return self.stream("GET", "/events", params, timeout=0)

    async def exec_stdin(
        self, container: str, command: list[str], env: dict[str, str], timeout: float = 30.0
    ) -> ExecStdin:
        """Start ``command`` in ``container`` with its stdin attached (``docker exec -i``);
        ``timeout`` bounds the engine's answers to the create and the start."""
        created = await self.json(
            "POST",
            f"/containers/{quoted(container)}/exec",
            body=json.dumps(
                {
                    "Cmd": command,
                    "Env": [f"{k}={v}" for k, v in env.items()],
                    "AttachStdin": True,
                    "AttachStdout": True,
                    "AttachStderr": True,
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        exec_id = quoted(str(created["Id"]))
        start = json.dumps({"Detach": False, "Tty": False}).encode()
        reader, writer = await self._hijack(f"/exec/{exec_id}/start", start, timeout)
        return ExecStdin(self, exec_id, reader, writer)

    async def _hijack(
        self, path: str, body: bytes, timeout: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """POST ``path`` on a connection of its own and take the connection over, as the
        docker CLI does for an attached stdin: the engine answers ``101`` and the socket then
        carries the raw streams both ways."""
        target = f"{await self._api_prefix()}{path}"
        try:
            answer = await upgrade(
                self._endpoint,
                target,
                body,
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise EngineError(f"the container engine is unreachable: {exc!r}") from exc
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the engine's answer to {path} broke off: {exc!r}") from exc
        if not isinstance(answer, Response):
            return answer
        raise await _refusal(answer, target)


async def _refusal(response: Response, target: str) -> EngineError:
    """The engine's error answer as an ``EngineError`` (its explanation read, up to
    ``_ERROR_BYTES``), the connection closed."""
    explanation = b""
    try:
        while len(explanation) < _ERROR_BYTES and (
            more := await response.read(_ERROR_BYTES - len(explanation))
        ):
            explanation += more
    except (OSError, TimeoutError):
        pass  # the status alone says enough
    finally:
        response.close()
    return _error(response.status, response.reason, target, explanation)


def _error(status: int, reason: str, target: str, body: bytes) -> EngineError:
    """The SDK's wording: ``404 Client Error for <url>: Not Found ("<engine message>")``."""
    try:
        explanation = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        explanation = body.decode("utf-8", "replace").strip()
    kind = "Client" if status < 500 else "Server"
    message = f"{status} {kind} Error for http+docker://localhost{target}: {reason}"
    if explanation:
        message = f'{message} ("{explanation}")'
    return EngineError(message, status)


class EngineBody:
    """An open streamed answer (a log): its body as it arrives, read errors as ``EngineError``."""

    def __init__(self, response: Response) -> None:
        self._response = response

    @property
    def content(self) -> "EngineBody":
        """The body reader (``content.iter_any()``)."""
        return self

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body in pieces of any size, until the stream ends."""
        try:
            async for data in self._response.iter_any():
                yield data
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the engine's stream broke off: {exc!r}") from exc

    def close(self) -> None:
        """Close the connection (the engine stops following this reader)."""
        self._response.close()
