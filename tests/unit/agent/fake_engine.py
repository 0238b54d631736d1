"""A fake Docker engine on a unix socket that records requests, bodies included (no docker SDK)."""

import contextlib
import http.server
import json
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CID = "c" * 64
IMAGE_ID = "sha256:" + "1" * 64

# A route answers a JSON value, raw bytes, or a stream: a list of JSON objects sent in chunks.
Answer = tuple[int, Any]


@dataclass(frozen=True)
class Seen:
    """One request the fake engine received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def sdk(self) -> bool:
        """Whether the docker SDK sent it (its User-Agent)."""
        return self.headers.get("user-agent", "").startswith("docker-sdk-python")


class Stream(list[Any]):
    """A streamed answer: each object is JSON-encoded and sent cut in ``piece``-byte chunks."""

    piece = 5


@dataclass(frozen=True)
class Hijack:
    """An answer that takes the connection over (``101``, as for an attached stdin): ``serve``
    then reads the client's raw bytes from ``rfile`` and writes frames to ``wfile``."""

    serve: Callable[[Seen, Any, Any], None]


def frame(stream: int, data: bytes) -> bytes:
    """One frame of a multiplexed exec stream (1: stdout, 2: stderr)."""
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class FakeEngine(socketserver.ThreadingUnixStreamServer):
    """Answers ``(method, path)`` from ``routes`` (a callable route sees the request)."""

    daemon_threads = True

    def __init__(self, path: str, api_version: str = "1.41") -> None:
        super().__init__(path, _Handler)
        self.api_version = api_version
        self.routes: dict[tuple[str, str], Answer | Callable[[Seen], Answer] | Hijack] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def requests_to(self, method: str, suffix: str) -> list[Seen]:
        """The requests received for one route."""
        return [s for s in self.seen if s.method == method and s.path.endswith(suffix)]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeEngine

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        if path.startswith(f"/v{self.server.api_version}/"):
            path = path.removeprefix(f"/v{self.server.api_version}")
        seen = Seen(
            self.command,
            path,
            parse_qs(split.query),
            {k.lower(): v for k, v in self.headers.items()},
            self._body(),
        )
        with self.server.lock:
            self.server.seen.append(seen)
        if path == "/version":
            route: Any = (200, {"ApiVersion": self.server.api_version, "Version": "28.0.1"})
        else:
            route = self.server.routes.get(
                (self.command, path), (404, {"message": f"page not found: {path}"})
            )
        if isinstance(route, Hijack):
            self.send_response(101, "UPGRADED")
            self.send_header("Content-Type", "application/vnd.docker.raw-stream")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "tcp")
            self.end_headers()
            self.wfile.flush()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                route.serve(seen, self.rfile, self.wfile)
            self.close_connection = True
            return
        status, body = route(seen) if callable(route) else route
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if isinstance(body, Stream):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = b"".join(json.dumps(item).encode() + b"\r\n" for item in body)
            for start in range(0, len(data), Stream.piece):
                piece = data[start : start + Stream.piece]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        data = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815


def serve(path: str) -> tuple[FakeEngine, threading.Thread]:
    """Start a fake engine at ``path`` in a daemon thread."""
    server = FakeEngine(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def inspect(state: str = "running", port: str | None = "49153") -> dict[str, Any]:
    """A container inspect answer with container port 8080 published (or not)."""
    bindings = [{"HostIp": "127.0.0.1", "HostPort": port}] if port else []
    return {
        "Id": CID,
        "State": {"Status": state},
        "NetworkSettings": {"Ports": {"8080/tcp": bindings}},
    }


def container_routes(engine: FakeEngine) -> None:
    """Routes for a create, start and inspect of container ``CID`` that succeed."""
    engine.routes[("POST", "/containers/create")] = (201, {"Id": CID, "Warnings": []})
    engine.routes[("GET", f"/containers/{CID}/json")] = (200, inspect())
    engine.routes[("POST", f"/containers/{CID}/start")] = (204, None)
