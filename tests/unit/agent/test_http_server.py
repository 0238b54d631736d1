"""The loopback server for Caddy's calls: keep-alive, what a handler sees, refusals, stopping."""

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from agent.http_server import LoopbackServer, Reply, Request

ROOT = Path(__file__).resolve().parents[3]


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


def test_stopping_the_loop_with_a_connection_open_logs_no_error(tmp_path: Path) -> None:
    # asyncio.run cancels the connection's task at exit; Python 3.11 then logs "Exception in
    # callback" unless the task ends normally (as the agent does when it stops).
    script = tmp_path / "serve.py"
    script.write_text(
        "import asyncio\n"
        "from agent.http_server import LoopbackServer, Reply\n"
        "async def main() -> None:\n"
        "    server = LoopbackServer(lambda request: Reply(200, 'ok'))\n"
        "    port = await server.start()\n"
        "    reader, writer = await asyncio.open_connection('127.0.0.1', port)\n"
        "    writer.write(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "    await reader.readuntil(b'ok')\n"
        "    print('answered', flush=True)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "answered", done.stderr
    assert "Exception in callback" not in done.stderr, done.stderr
