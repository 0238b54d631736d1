"""`berth terminal`: attach the local terminal to a server or resource session."""

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import aiohttp
import click
import orjson

from coordinator.client.http import ApiClient, ClientError, JsonObject, text
from coordinator.client.workspace_cli import resource_id

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

SUBPROTOCOL: Final = "berth.terminal.v1"
READ_BYTES: Final = 64 * 1024
EOT: Final = b"\x04"  # Ctrl-D: end of input for the remote line discipline


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put a tty in raw mode (keys go through unprocessed); always restore it."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


# Queries a program sends its terminal and waits for an answer to: cursor position and status
# reports (ESC[6n, ESC[5n, ESC[?6n) and device attributes (ESC[c, ESC[>c).
_QUERY: Final = re.compile(rb"\x1b\[[?>]?[0-9]*[nc]")
_QUERY_PREFIX: Final = re.compile(rb"\x1b(\[[?>]?[0-9]*)?\Z")


class QueryFilter:
    """Drops terminal queries from output that no terminal will answer (input from a pipe),
    so they do not show up as text; a query split across two chunks is held back until the
    rest arrives."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """Return what to print of ``data``."""
        data = _QUERY.sub(b"", self._held + data)
        start = data.rfind(b"\x1b", max(len(data) - 8, 0))
        if start >= 0 and _QUERY_PREFIX.match(data, start):
            data, self._held = data[:start], data[start:]
        else:
            self._held = b""
        return data


def _window_size() -> tuple[int, int] | None:
    for stream in (sys.stdout, sys.stdin):
        with contextlib.suppress(OSError, ValueError):
            size = os.get_terminal_size(stream.fileno())
            return size.lines, size.columns
    return None


async def _scope(api: ApiClient, target: str, deployment: str | None) -> JsonObject:
    if target.startswith("res_") or "/" in target:
        # A res_ id or PROJECT/ENV/NAME, like every other resource argument.
        rid = await resource_id(api, target)
        return {"kind": "resource", "resourceId": rid, "deploymentId": deployment}
    from coordinator.client.cli import server_id  # cli.py imports this module

    return {"kind": "server", "serverId": await server_id(api, target)}


class _Relay:
    """Local stdin/stdout on one side, the session's websocket on the other."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.loop = asyncio.get_running_loop()
        self.keys: asyncio.Queue[bytes] = asyncio.Queue()
        self.stdin = sys.stdin.fileno()
        self.stdout = sys.stdout.fileno()
        # Only a terminal answers a program's queries; with piped input they would be noise.
        self.queries = None if os.isatty(self.stdin) else QueryFilter()

    def _on_stdin(self) -> None:
        try:
            data = os.read(self.stdin, READ_BYTES)
        except BlockingIOError:
            return
        if not data:
            self.loop.remove_reader(self.stdin)
            data = EOT  # a pipe ended: the remote side sees end of input too
        self.keys.put_nowait(data)

    def start_input(self) -> None:
        try:
            self.loop.add_reader(self.stdin, self._on_stdin)
        except PermissionError:
            # A regular file cannot be polled; it is read at once (it cannot block).
            with open(self.stdin, "rb", closefd=False) as source:
                self.keys.put_nowait(source.read() + EOT)

    def stop_input(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.stdin)

    async def send_keys(self) -> None:
        while True:
            await self.ws.send_bytes(await self.keys.get())

    async def send_size(self) -> None:
        size = _window_size()
        if size is not None:
            await self.ws.send_json({"type": "resize", "rows": size[0], "cols": size[1]})

    async def receive(self) -> int:
        """Print output until the session ends; return the exit code to use."""
        async for frame in self.ws:
            if frame.type == aiohttp.WSMsgType.BINARY:
                data = frame.data if self.queries is None else self.queries.feed(frame.data)
                await asyncio.to_thread(_write_all, self.stdout, data)
            elif frame.type == aiohttp.WSMsgType.TEXT:
                control = orjson.loads(frame.data)
                if control.get("type") == "exit":
                    code = control.get("exitCode")
                    return code if isinstance(code, int) and 0 <= code < 256 else 1
                if control.get("type") == "error":
                    error = control.get("error") or {}
                    raise ClientError(f"{error.get('message')} ({error.get('code')})")
        raise ClientError(f"the terminal connection closed (code {self.ws.close_code})")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def run_terminal(
    url: str, token: str, target: str, command: list[str] | None, deployment: str | None
) -> int:
    """Open a session for ``target``, relay it to this terminal, return the remote exit code."""
    async with ApiClient(url, token) as api:
        body: JsonObject = {"scope": await _scope(api, target, deployment)}
        size = _window_size()
        if size is not None:
            body["rows"], body["cols"] = size
        if command:
            body["command"] = list(command)
        item = await api.post("/terminal-sessions", body)
    transport = item.get("transport")
    if not isinstance(transport, dict):
        raise ClientError("the coordinator answered without a terminal transport")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url + text(transport, "path"), protocols=(SUBPROTOCOL,)) as ws,
    ):
        await ws.send_json({"type": "auth", "ticket": text(transport, "ticket")})
        relay = _Relay(ws)
        loop = asyncio.get_running_loop()
        with raw_terminal(relay.stdin):
            relay.start_input()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(
                    signal.SIGWINCH, lambda: loop.create_task(relay.send_size())
                )
            sender = asyncio.create_task(relay.send_keys())
            try:
                return await relay.receive()
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                relay.stop_input()
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signal.SIGWINCH)


@click.command("terminal")
@click.argument("target")
@click.option("--command", "command", help="Run this instead of a shell (split like a shell).")
@click.option("--deployment", help="With a resource: enter this deployment's container.")
@click.pass_obj
def terminal(opts: "Options", target: str, command: str | None, deployment: str | None) -> None:
    """Open a terminal on a server (name or srv_ id) or in a resource's container (res_ id or
    PROJECT/ENV/NAME).

    Exits with the remote process's exit code. Works with stdin from a pipe too.
    """
    where = opts.target()
    argv = shlex.split(command) if command else None
    code = asyncio.run(run_terminal(where.url, where.token, target, argv, deployment))
    click.get_current_context().exit(code)


COMMANDS: Final[tuple[click.Command, ...]] = (terminal,)
