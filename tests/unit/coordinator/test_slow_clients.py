"""Slow clients: partial request heads are closed in time, waiting sockets are capped, slow
bodies get 408, and established streams (agent websockets) are not cut."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, serving

PARTIAL_HEAD = b"GET /servers HTTP/1.1\r\nHost: coordinator\r\nX-Slow: "


class Socket:
    """A raw client socket that notices when the coordinator closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False
        self.received = b""
        self._watch = asyncio.create_task(self._wait_for_close())

    @classmethod
    async def open(cls, coordinator: Coordinator, first: bytes = PARTIAL_HEAD) -> "Socket":
        reader, writer = await asyncio.open_connection("127.0.0.1", coordinator.port)
        writer.write(first)
        await writer.drain()
        return cls(reader, writer)

    async def _wait_for_close(self) -> None:
        try:
            while chunk := await self.reader.read(65536):
                self.received += chunk
        except ConnectionError:
            pass
        self.closed = True

    async def trickle(self, data: bytes) -> None:
        """Send more bytes (ignored once the peer is gone)."""
        if not self.closed:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except ConnectionError:
                pass

    async def close(self) -> None:
        self._watch.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_many(coordinator: Coordinator, count: int) -> list[Socket]:
    """``count`` sockets, each with a request head that never ends."""
    return list(await asyncio.gather(*(Socket.open(coordinator) for _ in range(count))))


@pytest.fixture
async def strict(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator whose clients get one second for a request head or a JSON body."""
    async with serving(
        tmp_path / "strict",
        database_url,
        header_read_timeout_seconds=1.0,
        body_read_timeout_seconds=1.0,
    ) as harness:
        yield harness


async def test_partial_heads_are_closed_within_the_timeout(strict: Coordinator) -> None:
    token = await strict.bootstrap()
    sockets = await open_many(strict, 300)
    try:
        # A normal request meanwhile is served at once.
        status, body, _ = await strict.call("GET", "/servers", token=token)
        assert status == 200, body
        # Trickling bytes does not extend the deadline.
        for _ in range(3):
            await asyncio.gather(*(s.trickle(b"a") for s in sockets[:20]))

        async def all_closed() -> bool:
            return all(s.closed for s in sockets)

        await eventually(all_closed, timeout=15, what="the coordinator to close partial heads")
        assert all(s.received == b"" for s in sockets)  # closed, nothing processed
        status, body, _ = await strict.call("GET", "/servers", token=token)
        assert status == 200, body
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


async def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_head(
    strict: Coordinator,
) -> None:
    """One quick request does not buy time to trickle the next head; idling is not cut."""
    complete = b"GET /nowhere HTTP/1.1\r\nHost: coordinator\r\n\r\n"
    trickler = await Socket.open(strict, complete)
    idler = await Socket.open(strict, complete)
    try:

        async def answered() -> bool:
            return all(b'"not_found"' in s.received for s in (trickler, idler))

        await eventually(answered, timeout=15, what="both first requests to be answered")
        await trickler.trickle(PARTIAL_HEAD)

        async def trickler_closed() -> bool:
            return trickler.closed

        await eventually(trickler_closed, timeout=15, what="the second partial head to be closed")
        assert not idler.closed  # idle between requests: aiohttp's keep-alive timeout applies
        await idler.trickle(complete)

        async def answered_again() -> bool:
            return idler.received.count(b'"not_found"') == 2

        await eventually(answered_again, timeout=15, what="the idle connection to be reused")
    finally:
        await asyncio.gather(trickler.close(), idler.close())


async def test_waiting_connections_are_capped_oldest_first(
    tmp_path: Path, database_url: str
) -> None:
    harness = Coordinator(
        tmp_path / "capped",
        database_url,
        header_read_timeout_seconds=600.0,  # only the cap can close them here
        max_unauthenticated_connections=20,
    )
    await harness.start()
    sockets: list[Socket] = []
    try:
        token = await harness.bootstrap()
        for _ in range(50):  # one at a time, so "oldest" is well defined
            sockets.append(await Socket.open(harness))

        async def oldest_closed() -> bool:
            return all(s.closed for s in sockets[:30])

        await eventually(oldest_closed, timeout=15, what="the 30 oldest waiting sockets to close")
        assert not any(s.closed for s in sockets[30:])
        # A new client still gets through (and evicts one more of the waiting ones).
        status, body, _ = await harness.call("GET", "/servers", token=token)
        assert status == 200, body
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
        await harness.close()


async def test_a_slow_json_body_gets_408(strict: Coordinator) -> None:
    token = await strict.bootstrap()
    head = (
        "POST /projects HTTP/1.1\r\nHost: coordinator\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    )
    sock = await Socket.open(strict, head.encode())
    try:

        async def answered() -> bool:
            return b"\r\n\r\n" in sock.received or sock.closed

        await eventually(answered, timeout=15, what="an answer to the unfinished body")
        assert sock.received.startswith(b"HTTP/1.1 408 "), sock.received[:200]
        assert b'"code":"request_timeout"' in sock.received.replace(b" ", b"")
    finally:
        await sock.close()
    status, body, _ = await strict.call("GET", "/projects", token=token)
    assert status == 200
    assert body["items"] == []  # nothing partially written


async def test_established_agent_links_outlive_the_header_timeout(strict: Coordinator) -> None:
    token = await strict.bootstrap()
    agent = await FakeAgent.enroll(strict, token, "web-1")
    await agent.connect()
    # A partial head opened after the link: once it is closed, the link is older than the
    # header timeout and must still be up.
    late = await Socket.open(strict)
    try:

        async def late_closed() -> bool:
            return late.closed

        await eventually(late_closed, timeout=15, what="the partial head to be closed")
        assert strict.registry.get(agent.server_id) is not None
        assert await strict.agent_status(token, agent.server_id) == "online"
    finally:
        await late.close()
        await agent.close()
