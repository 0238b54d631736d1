"""The agent's h11 client against aiohttp's server and against hand-written peers for the edges."""

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from agent.http_client import Endpoint, HttpError, Response, request, upgrade

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(request_: web.Request) -> web.StreamResponse:
    body = await request_.read()
    answer = web.StreamResponse(headers={"X-Method": request_.method})
    answer.enable_chunked_encoding()
    await answer.prepare(request_)
    await answer.write(f"{request_.path_qs}|{request_.headers.get('Host')}|".encode())
    for start in range(0, len(body), 1000):  # many chunks
        await answer.write(body[start : start + 1000])
    await answer.write_eof()
    return answer


@pytest.fixture
async def aiohttp_server() -> AsyncIterator[Endpoint]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Endpoint("127.0.0.1", runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _peer(handle: Peer) -> tuple[asyncio.Server, Endpoint]:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    return server, Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])


async def _text(response: Response) -> str:
    try:
        return (await response.read()).decode()
    finally:
        response.close()


async def test_bodies_of_every_kind_arrive_whole(aiohttp_server: Endpoint) -> None:
    payload = bytes(range(256)) * 400

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 7000):
            yield payload[start : start + 7000]

    for body in (payload, io.BytesIO(payload), pieces()):
        response = await request(aiohttp_server, "PUT", "/up?x=1", body=body)
        assert response.status == 200
        assert response.headers["x-method"] == "PUT"
        text = await response.read()
        response.close()
        head, _, echoed = text.partition(b"|127.0.0.1:")
        assert head == b"/up?x=1"
        assert echoed.partition(b"|")[2] == payload


async def test_reads_in_pieces_of_the_size_asked(aiohttp_server: Endpoint) -> None:
    response = await request(aiohttp_server, "POST", "/p", body=b"a" * 5000)
    sizes = [len(piece) async for piece in response.iter_chunked(300)]
    assert max(sizes) <= 300
    assert sum(sizes) == len("/p|") + len(aiohttp_server.authority) + 1 + 5000
    assert await response.readany() == b""


async def test_a_refusal_before_the_body_is_taken_is_the_answer() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 413 Too Big\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoo big"
        )
        await writer.drain()
        writer.close()

    server, endpoint = await _peer(refuse)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536

    async with server:
        response = await request(endpoint, "PUT", "/", body=endless(), read_timeout=None)
        assert (response.status, await _text(response)) == (413, "too big")


async def test_a_body_source_that_fails_is_the_error_even_without_a_read_timeout() -> None:
    async def listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    server, endpoint = await _peer(listen)

    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise LookupError("the source broke")

    async with server:
        with pytest.raises(LookupError, match="the source broke"):
            await asyncio.wait_for(
                request(endpoint, "PUT", "/", body=broken(), read_timeout=None), 10
            )


async def test_garbage_and_silence_are_errors() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server, endpoint = await _peer(garbage)
    async with server:
        with pytest.raises(HttpError):
            await request(endpoint, "GET", "/")
    server, endpoint = await _peer(silent)
    async with server:
        with pytest.raises(TimeoutError):
            await request(endpoint, "GET", "/", read_timeout=0.2)


async def test_a_body_cut_short_is_an_error() -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    server, endpoint = await _peer(short)
    async with server:
        response = await request(endpoint, "GET", "/")
        with pytest.raises(HttpError):
            await response.read()
        response.close()


async def test_an_upgrade_hands_over_the_raw_streams_without_losing_a_byte() -> None:
    async def hijack(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Upgrade: tcp" in head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert await reader.readexactly(length) == b'{"a":1}'
        # The stream's first bytes in the same write as the head: none may be swallowed.
        writer.write(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello")
        await writer.drain()
        writer.write(b"|" + await reader.readexactly(4))
        await writer.drain()
        writer.close()

    server, endpoint = await _peer(hijack)
    async with server:
        answer = await upgrade(endpoint, "/exec/1/start", b'{"a":1}')
        assert not isinstance(answer, Response)
        reader, writer = answer
        writer.write(b"ping")
        assert await reader.read() == b"hello|ping"
        writer.close()


async def test_a_refused_upgrade_is_the_peers_answer() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno exec 1")
        await writer.drain()
        await reader.read()

    server, endpoint = await _peer(refuse)
    async with server:
        answer = await upgrade(endpoint, "/exec/1/start", b"{}")
        assert isinstance(answer, Response)
        assert (answer.status, await _text(answer)) == (404, "no exec 1")


def test_endpoints_from_urls() -> None:
    assert Endpoint.from_url("http://127.0.0.1:2019").authority == "127.0.0.1:2019"
    secure = Endpoint.from_url("https://example.test/x")
    assert (secure.port, secure.authority, secure.tls is not None) == (443, "example.test", True)
    assert Endpoint.from_url("http://[::1]:8080").authority == "[::1]:8080"
    with pytest.raises(ValueError, match="not an http"):
        Endpoint.from_url("unix:///run/caddy.sock")
