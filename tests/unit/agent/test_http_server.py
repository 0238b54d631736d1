"""The loopback server for Caddy's calls: keep-alive, what a handler sees, refusals, stopping."""

import asyncio
import io

import aiohttp
import pytest

from agent.http_server import LoopbackServer, Reply, Request


def _echo(request: Request) -> Reply:
    seen = f"{request.method} {request.path} {dict(request.query)} {request.headers.get('x-a')}"
    return Reply(201, seen, headers={"X-Seen": "yes"})


async def test_a_handler_sees_method_path_query_and_headers() -> None:
    server = LoopbackServer(_echo)
    port = await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/p/q?domain=a.test&x=",
                headers={"X-A": "1"},
            ) as answer,
        ):
            assert answer.status == 201
            assert answer.headers["X-Seen"] == "yes"
            assert await answer.text() == "GET /p/q {'domain': 'a.test', 'x': ''} 1"
    finally:
        await server.stop()


async def test_one_connection_carries_many_requests() -> None:
    server = LoopbackServer(_echo)
    port = await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for index in range(3):
            writer.write(
                f"POST /{index} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 201 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert (await reader.readexactly(length)).startswith(f"POST /{index} ".encode())
        writer.close()
    finally:
        await server.stop()


async def test_what_is_not_http_is_refused() -> None:
    server = LoopbackServer(_echo)
    port = await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.split(b" ")[1] == b"400"
        writer.close()
    finally:
        await server.stop()


async def test_a_large_body_still_gets_the_answer_and_the_connection_goes_on() -> None:
    # A visitor's upload to an app that is down: the failure page, whatever the body's size.
    server = LoopbackServer(_echo)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(
                    f"http://127.0.0.1:{port}/upload", data=io.BytesIO(b"x" * (3 * 1024 * 1024))
                ) as answer:
                    assert answer.status == 201
                    assert (await answer.text()).startswith("POST /upload ")
    finally:
        await server.stop()


async def test_stop_closes_idle_connections_and_the_port() -> None:
    server = LoopbackServer(_echo)
    port = await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await server.stop()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert server.port == 0
