"""Loopback TCP relays for tests: an HTTP CONNECT forward proxy and a TLS-terminating front."""

import asyncio
import contextlib
import ssl


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


class ConnectProxy:
    """A forward proxy that records every CONNECT target (what HTTPS_PROXY points at)."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on 127.0.0.1, port chosen by the kernel."""
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        if len(request) < 2 or request[0] != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        self.targets.append(request[1])
        host, _, port = request[1].rpartition(":")
        upstream = await asyncio.open_connection(host, int(port))
        self.writers.update((writer, upstream[1]))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)


class TlsFront:
    """A TLS-terminating reverse proxy: TLS on its port, plain TCP to the coordinator."""

    def __init__(self, context: ssl.SSLContext, upstream_port: int) -> None:
        self._context = context
        self._upstream_port = upstream_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int) -> None:
        """Listen on 127.0.0.1:``port`` (0 lets the kernel choose)."""
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port, ssl=self._context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        self.writers.update((writer, upstream[1]))
        await _splice((reader, writer), upstream)
