"""The agent's h11 client against aiohttp's server, hand-written peers for the edges, proxies."""

import asyncio
import base64
import io
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from agent.http_client import Endpoint, HttpError, Response, fetch, request, upgrade
from agent.http_proxy import Proxy, ProxyRefused
from tests.tcp_relays import ConnectProxy
from tests.tls_material import make_ca_and_server_cert

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


async def test_fetch_reads_the_whole_answer(aiohttp_server: Endpoint) -> None:
    answer = await fetch(aiohttp_server, "POST", "/f", body="é".encode() * 30000 + b"\xff")
    assert answer.status == 200
    assert answer.headers["x-method"] == "POST"
    assert answer.body.endswith("é".encode() * 30000 + b"\xff")
    assert answer.text.endswith("é" * 30000 + "\ufffd")


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


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://c.test/x", None),
        ({"HTTPS_PROXY": "http://p.test:3128"}, "https://c.test/x", Proxy("p.test", 3128)),
        ({"https_proxy": "p.test:8080"}, "https://c.test/x", Proxy("p.test", 8080)),
        ({"HTTPS_PROXY": "http://p.test:3128"}, "http://c.test/x", None),
        ({"HTTP_PROXY": "http://p.test"}, "http://c.test/x", Proxy("p.test", 80)),
        ({"HTTPS_PROXY": "http://p.test:3128", "NO_PROXY": "c.test"}, "https://c.test/", None),
        (
            {"HTTPS_PROXY": "http://us%40er:pa%3Ass@p.test:3128"},
            "https://c.test/x",
            Proxy("p.test", 3128, "Basic " + base64.b64encode(b"us@er:pa:ss").decode()),
        ),
    ],
)
def test_the_environment_names_the_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: Proxy | None
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Proxy.for_url(url) == expected


def test_an_https_proxy_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://p.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="only http:// proxies"):
        Proxy.for_url("https://c.test/")


async def test_plain_http_through_a_proxy_is_absolute_form_with_its_credentials() -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    server, at = await _peer(proxy)
    endpoint = Endpoint("c.test", 8000, proxy=Proxy(at.host, at.port, "Basic eDp5"))
    async with server:
        assert await _text(await request(endpoint, "GET", "/a?b=1")) == "ok"
    head = seen[0].decode()
    assert head.startswith("GET http://c.test:8000/a?b=1 HTTP/1.1\r\n")
    assert "host: c.test:8000" in head.lower()
    assert "Proxy-Authorization: Basic eDp5\r\n" in head


async def test_tls_goes_through_a_connect_tunnel_and_a_refusal_says_so(
    tmp_path: Path,
) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = head.split(b" ")[1]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    tls_server = await asyncio.start_server(origin, "127.0.0.1", 0, ssl=context)
    port = tls_server.sockets[0].getsockname()[1]
    tunnels = ConnectProxy()
    await tunnels.start()
    trusting = ssl.create_default_context(cafile=str(ca))
    try:
        via = Endpoint("127.0.0.1", port, tls=trusting, proxy=Proxy("127.0.0.1", tunnels.port))
        assert await _text(await request(via, "GET", "/secret")) == "/secret"
        assert tunnels.targets == [f"127.0.0.1:{port}"]

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            await writer.drain()

        refusing, at = await _peer(refuse)
        async with refusing:
            blocked = Endpoint("127.0.0.1", port, tls=trusting, proxy=Proxy(at.host, at.port))
            with pytest.raises(ProxyRefused, match="refused the tunnel: 407"):
                await request(blocked, "GET", "/secret")
    finally:
        await tunnels.close()
        tls_server.close()
        await tls_server.wait_closed()


async def test_a_body_longer_than_its_content_length_is_an_error(aiohttp_server: Endpoint) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"x" * 10

    with pytest.raises(HttpError, match="does not match its headers"):
        await request(aiohttp_server, "PUT", "/", body=pieces(), headers={"Content-Length": "5"})
