"""Docker Engine API calls on the engine's unix socket without the docker SDK.

The agent makes the routine calls (list, inspect, df, info, version) all the time and the
deployment calls (create, start, stop, pull, build: ``engine_ops``) on every deployment; the
docker SDK pulls in requests, urllib3 and charset_normalizer, about 8 MiB of the agent's resident
memory (bench/agent_cost.py). This client speaks HTTP/1.1 with ``http.client`` on the engine's
unix socket, one connection per call, and asks for the same API version the SDK would: the
engine's own (``GET /version``, once). Engines reached some other way (``DOCKER_HOST=tcp://`` or
``ssh://``) keep going through the SDK (``agent.runtime.sdk_ops``).
"""

import codecs
import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import IO, Any, Final, Protocol
from urllib.parse import quote, urlencode

DEFAULT_SOCKET: Final = "/var/run/docker.sock"
# The docker SDK refuses older engines; so does this client, so both accept the same hosts.
MINIMUM_API_VERSION: Final = (1, 24)


class EngineApiError(Exception):
    """The engine answered with an error status, or with something that is not its API."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EngineNotFound(EngineApiError):
    """404: no such container or image."""


class EngineApi(Protocol):
    """The routine engine calls, blocking (worker threads only).

    Each raises ``EngineApiError`` (``EngineNotFound`` for a 404) or ``OSError`` when the engine
    cannot be reached.
    """

    def version(self) -> dict[str, Any]:
        """``GET /version``."""
        ...

    def ping(self) -> bool:
        """``GET /_ping``: whether the engine answered OK."""
        ...

    def info(self) -> dict[str, Any]:
        """``GET /info``."""
        ...

    def df(self) -> dict[str, Any]:
        """``GET /system/df`` (costly: seconds on a busy host)."""
        ...

    def containers(
        self, *, all: bool = False, size: bool = False, filters: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /containers/json``: running ones, or every one when ``all``."""
        ...

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        ...

    def images(self, *, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /images/json``."""
        ...

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        """``DELETE /containers/{id}`` (its anonymous volumes are kept)."""
        ...

    def remove_image(self, image: str, *, force: bool = False) -> None:
        """``DELETE /images/{image}`` (untagged parents are pruned, as the engine does)."""
        ...


def local_socket(docker_host: str | None = None) -> str | None:
    """The engine's unix socket per ``DOCKER_HOST``, None when the engine is reached otherwise.

    As the docker SDK reads it: unset or empty means the default socket.
    """
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if not host:
        return DEFAULT_SOCKET
    path = host.removeprefix("unix://")
    return path if host.startswith("unix://") and path.startswith("/") else None


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _filters(filters: dict[str, list[str]] | None) -> dict[str, str]:
    return {"filters": json.dumps(filters)} if filters else {}


class _UnixConnection(http.client.HTTPConnection):
    """``http.client`` on a unix socket: only the connect differs."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class UnixEngineApi:
    """``EngineApi`` on the engine's unix socket; safe to share between threads."""

    def __init__(self, path: str = DEFAULT_SOCKET, timeout: float = 10.0) -> None:
        self._path = path
        self._timeout = timeout
        self._lock = threading.Lock()
        self._prefix: str | None = None

    @property
    def path(self) -> str:
        """The engine's socket."""
        return self._path

    def _api_prefix(self) -> str:
        # The SDK's negotiation: the engine's own API version, asked once; an engine that
        # cannot answer is asked again at the next call.
        with self._lock:
            if self._prefix is None:
                raw = self._get("/version", {}, versioned=False)
                version = str(raw.get("ApiVersion", "")) if isinstance(raw, dict) else ""
                major, _, minor = version.partition(".")
                if not (major.isdigit() and minor.isdigit()):
                    raise EngineApiError(f"the engine sent no API version: {version!r}")
                if (int(major), int(minor)) < MINIMUM_API_VERSION:
                    raise EngineApiError(f"the engine's API version {version} is too old")
                self._prefix = f"/v{version}"
            return self._prefix

    def _open(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        *,
        versioned: bool = True,
        body: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request; return the open connection and its response (status below 400)."""
        target = f"{self._api_prefix()}{path}" if versioned else path
        if params:
            target = f"{target}?{urlencode(params)}"
        connection = _UnixConnection(self._path, self._timeout if timeout is None else timeout)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            if response.status >= 400:
                raise _error(response.status, response.reason, target, response.read())
        except http.client.HTTPException as exc:
            connection.close()
            raise EngineApiError(
                f"the engine sent an invalid response to {target}: {exc!r}"
            ) from exc
        except BaseException:
            connection.close()
            raise
        return connection, response

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        *,
        versioned: bool = True,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        connection, response = self._open(
            method,
            path,
            params,
            versioned=versioned,
            body=body,
            headers=headers,
            timeout=timeout,
        )
        try:
            return response.read()
        except http.client.HTTPException as exc:
            raise EngineApiError(f"the engine sent an invalid response to {path}: {exc!r}") from exc
        finally:
            connection.close()

    def stream(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        *,
        body: IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects of a progress stream (pull, build) as the engine sends them."""
        connection, response = self._open(
            method, path, params, body=body, headers=headers, timeout=timeout
        )
        try:
            yield from _json_objects(response, path)
        except http.client.HTTPException as exc:
            raise EngineApiError(f"the engine sent an invalid response to {path}: {exc!r}") from exc
        finally:
            connection.close()

    def _get(self, path: str, params: dict[str, str], *, versioned: bool = True) -> Any:
        body = self._request("GET", path, params, versioned=versioned)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise EngineApiError(f"the engine sent invalid JSON for {path}: {exc}") from exc

    def version(self) -> dict[str, Any]:
        """``GET /version``."""
        return dict(self._get("/version", {}))

    def ping(self) -> bool:
        """``GET /_ping``."""
        return self._request("GET", "/_ping", {}) == b"OK"

    def info(self) -> dict[str, Any]:
        """``GET /info``."""
        return dict(self._get("/info", {}))

    def df(self) -> dict[str, Any]:
        """``GET /system/df``."""
        return dict(self._get("/system/df", {}))

    def containers(
        self, *, all: bool = False, size: bool = False, filters: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /containers/json`` (the SDK's query: no limit, command not truncated)."""
        params = {"limit": "-1", "all": _flag(all), "size": _flag(size), "trunc_cmd": "0"}
        return list(self._get("/containers/json", params | _filters(filters)))

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return dict(self._get(f"/containers/{quote(container_id, safe='/:')}/json", {}))

    def images(self, *, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /images/json`` (top-level images, as the SDK asks)."""
        return list(self._get("/images/json", {"only_ids": "0", "all": "0"} | _filters(filters)))

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        """``DELETE /containers/{id}``."""
        params = {"v": "0", "link": "0", "force": _flag(force)}
        self._request("DELETE", f"/containers/{quote(container_id, safe='/:')}", params)

    def remove_image(self, image: str, *, force: bool = False) -> None:
        """``DELETE /images/{image}``."""
        params = {"force": _flag(force), "noprune": "0"}
        self._request("DELETE", f"/images/{quote(image, safe='/:')}", params)

    def inspect_image(self, image: str) -> dict[str, Any]:
        """``GET /images/{name}/json``."""
        return dict(self._get(f"/images/{quote(image, safe='/:')}/json", {}))

    def create_container(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """``POST /containers/create?name=``: the new container's ``Id`` and ``Warnings``."""
        body = self._request(
            "POST",
            "/containers/create",
            {"name": name},
            body=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            return dict(json.loads(body))
        except (ValueError, TypeError) as exc:
            raise EngineApiError(f"the engine sent invalid JSON for a create: {exc}") from exc

    def start_container(self, container_id: str) -> None:
        """``POST /containers/{id}/start`` (304, already running, is not an error)."""
        self._request("POST", f"/containers/{quote(container_id, safe='/:')}/start", {})

    def stop_container(self, container_id: str, grace: int) -> None:
        """``POST /containers/{id}/stop?t=``; the call may take the grace period, and waits."""
        # As the SDK does: the client's timeout plus the grace the engine may wait.
        self._request(
            "POST",
            f"/containers/{quote(container_id, safe='/:')}/stop",
            {"t": str(grace)},
            timeout=self._timeout + grace,
        )

    def restart_container(self, container_id: str, grace: int) -> None:
        """``POST /containers/{id}/restart?t=``."""
        self._request(
            "POST",
            f"/containers/{quote(container_id, safe='/:')}/restart",
            {"t": str(grace)},
            timeout=self._timeout + grace,
        )


def _json_objects(response: http.client.HTTPResponse, path: str) -> Iterator[dict[str, Any]]:
    # Objects may span chunks, and one chunk may carry several (the SDK's json_stream does the
    # same): decode as the bytes come, never waiting for the end of a long stream.
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    buffer = ""
    while True:
        chunk = response.read1(65536)
        buffer += text.decode(chunk, final=not chunk)
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                item, end = decoder.raw_decode(buffer)
            except ValueError:
                if not chunk:
                    raise EngineApiError(
                        f"the engine sent invalid JSON for {path}: {buffer[:200]!r}"
                    ) from None
                break
            buffer = buffer[end:]
            if isinstance(item, dict):
                yield item
        if not chunk:
            return


def _error(status: int, reason: str, target: str, body: bytes) -> EngineApiError:
    """The SDK's wording: ``404 Client Error for <url>: Not Found ("<engine message>")``."""
    try:
        explanation = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        explanation = body.decode("utf-8", "replace").strip()
    kind = "Client" if status < 500 else "Server"
    message = f"{status} {kind} Error for http+docker://localhost{target}: {reason}"
    if explanation:
        message = f'{message} ("{explanation}")'
    cls = EngineNotFound if status == 404 else EngineApiError
    return cls(message, status)
