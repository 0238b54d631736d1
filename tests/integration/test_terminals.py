"""Terminal sessions end to end: API -> coordinator relay -> real agent -> pty (docker exec or a
host shell) and back, with tickets, ownership, flow control and reattach."""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from coordinator.terminals import TERMINALS_KEY
from coordinator.terminals.hub import CREDIT_WINDOW_BYTES, TerminalHub
from coordinator.terminals.ring import RING_BYTES
from tests.harness import Coordinator, eventually, scaled, serving
from tests.integration.stacks import start_agent, workload

pytestmark = pytest.mark.docker

HOST_SHELL = {"BERTH_AGENT_ALLOW_HOST_SHELL": "1"}
TICKET_SECONDS = 1.0
GRACE_SECONDS = 2.0


@pytest.fixture
async def terminals(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator with short ticket and reattach-grace periods."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        terminal_ticket_seconds=scaled(TICKET_SECONDS),
        terminal_grace_seconds=scaled(GRACE_SECONDS),
    ) as harness:
        yield harness


@pytest.fixture
async def token(terminals: Coordinator) -> str:
    """The first admin's API token."""
    return await terminals.bootstrap()


def hub_of(coordinator: Coordinator) -> TerminalHub:
    """The running app's terminal hub (internal accessor for memory checks)."""
    runner = coordinator._runner
    assert runner is not None
    return runner.app[TERMINALS_KEY]


class Term:
    """A websocket client of one terminal session; collects output and control frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.output = bytearray()
        self.controls: list[dict[str, Any]] = []
        self.close_code: int | None = None

    @classmethod
    async def attach(cls, coordinator: Coordinator, path: str, ticket: str) -> "Term":
        assert coordinator.http is not None
        ws = await coordinator.http.ws_connect(
            coordinator.url + path, protocols=("berth.terminal.v1",)
        )
        await ws.send_json({"type": "auth", "ticket": ticket})
        term = cls(ws)
        await term._next()
        return term

    async def _next(self) -> bool:
        """Read one frame; False once the socket closed."""
        frame = await self.ws.receive()
        if frame.type == aiohttp.WSMsgType.BINARY:
            self.output.extend(frame.data)
        elif frame.type == aiohttp.WSMsgType.TEXT:
            self.controls.append(frame.json())
        else:
            self.close_code = self.ws.close_code
            return False
        return True

    async def expect(self, needle: bytes, timeout: float = 15) -> None:
        """Read until ``needle`` shows in the output (everything read so far counts)."""
        async with asyncio.timeout(scaled(timeout)):
            while needle not in self.output:
                if not await self._next():
                    raise AssertionError(f"closed before {needle!r}: {bytes(self.output[-500:])!r}")
        # Later expectations look only at what comes after this match.
        del self.output[: self.output.index(needle) + len(needle)]

    async def run(self, line: str) -> None:
        await self.ws.send_bytes(line.encode() + b"\n")

    async def end(self, timeout: float = 15) -> dict[str, Any]:
        """Read until the session's last control frame (exit or error) and the close."""
        async with asyncio.timeout(scaled(timeout)):
            while await self._next():
                pass
        assert self.controls, "no control frame before the close"
        return self.controls[-1]

    async def close(self) -> None:
        await self.ws.close()


async def open_session(
    coordinator: Coordinator, token: str, scope: dict[str, Any], **extra: Any
) -> tuple[int, Any]:
    status, body, _ = await coordinator.call(
        "POST", "/terminal-sessions", token=token, json={"scope": scope, **extra}
    )
    return status, body


async def opened(coordinator: Coordinator, token: str, scope: dict[str, Any], **extra: Any) -> Any:
    status, body = await open_session(coordinator, token, scope, **extra)
    assert status == 201, body
    return body


async def attach(coordinator: Coordinator, item: Any) -> Term:
    return await Term.attach(coordinator, item["transport"]["path"], item["transport"]["ticket"])


async def test_resource_terminal_output_resize_interrupt_exit_and_reattach(
    terminals: Coordinator, token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(terminals, token, tmp_path / "agent", "sleep 3600")
    try:
        deployment_id = await stack.deploy()
        item = await opened(
            terminals,
            token,
            {"kind": "resource", "resourceId": stack.resource_id},
            rows=30,
            cols=90,
        )
        assert item["scope"] == "resource"
        assert item["serverId"] == stack.server_id
        assert item["deploymentId"] == deployment_id
        assert item["transport"]["path"] == f"/terminal-sessions/{item['sessionId']}/attach"
        term = await attach(terminals, item)
        assert term.controls[0]["type"] == "ready"

        await term.run("echo in-container-$((6*7)) $(hostname)")
        await term.expect(b"in-container-42")
        await term.run("stty size")
        await term.expect(b"30 90")
        await term.ws.send_json({"type": "resize", "rows": 41, "cols": 123})
        await term.run("stty size")
        await term.expect(b"41 123")

        # Ctrl-C is the 0x03 byte: it interrupts the foreground sleep, the prompt comes back.
        # The marker is printed by the command list itself (the echoed line shows $((...))),
        # so once it arrives the shell is running the list: Ctrl-C then aborts the rest of it.
        await term.run("echo armed-$((6+1)); sleep 60; echo not-interrupted")
        await term.expect(b"armed-7")
        started = time.monotonic()
        await term.ws.send_bytes(b"\x03")
        await term.run("echo back-$((1+1))")
        # Bounds well under the 60 s sleep prove the interrupt without racing a loaded machine.
        await term.expect(b"back-2", timeout=30)
        assert time.monotonic() - started < scaled(30)
        assert b"not-interrupted" not in term.output

        # A dropped client may reattach within the grace period and sees recent output.
        await term.run("echo before-drop-$((3*3))")
        await term.expect(b"before-drop-9")
        await term.close()
        session_path = f"/terminal-sessions/{item['sessionId']}"
        _, shown, _ = await terminals.call("GET", session_path, token=token)
        assert shown["item"]["status"] == "detached", shown
        _, fresh, _ = await terminals.call("POST", f"{session_path}/tickets", token=token, json={})
        again = await attach(terminals, fresh)
        await again.expect(b"before-drop-9")  # the replay, before any new input
        await again.run("exit 5")
        end = await again.end()
        assert end == {"type": "exit", "exitCode": 5}
        assert again.close_code == 1000
        _, shown, _ = await terminals.call("GET", session_path, token=token)
        assert shown["item"]["status"] == "closed"
        assert shown["item"]["exitCode"] == 5
        status, events, _ = await terminals.call("GET", "/audit-events?limit=100", token=token)
        assert status == 200
        kinds = {e["eventType"] for e in events["items"] if e["aggregateId"] == item["sessionId"]}
        assert kinds == {"terminal-session.opened", "terminal-session.closed"}
    finally:
        await stack.agent.stop()


async def test_tickets_ownership_and_closed_sessions(
    terminals: Coordinator, token: str, tmp_path: Path
) -> None:
    agent, server_id = await start_agent(terminals, token, tmp_path / "agent", env=HOST_SHELL)
    try:
        scope = {"kind": "server", "serverId": server_id}
        item = await opened(terminals, token, scope, command=["/bin/sh"])
        path, ticket = item["transport"]["path"], item["transport"]["ticket"]
        term = await Term.attach(terminals, path, ticket)
        await term.close()

        # A used ticket is refused (before any byte of the session flows).
        reused = await Term.attach(terminals, path, ticket)
        assert reused.controls[0]["type"] == "error"
        assert reused.controls[0]["error"]["code"] == "unauthorized"
        assert await reused.end() == reused.controls[0]
        assert reused.close_code == 4401

        # An expired ticket is refused.
        session_path = f"/terminal-sessions/{item['sessionId']}"
        _, fresh, _ = await terminals.call("POST", f"{session_path}/tickets", token=token, json={})
        await asyncio.sleep(scaled(TICKET_SECONDS) + 0.3)  # the ticket's lifetime is the point
        late = await Term.attach(terminals, path, fresh["transport"]["ticket"])
        assert late.controls[0]["error"]["code"] == "unauthorized"

        # Another actor (a deploy token allowed to open terminals) sees none of it.
        status, minted, _ = await terminals.call(
            "POST",
            "/deploy-tokens",
            token=token,
            json={
                "displayName": "other",
                "scope": {"permissions": ["terminal-sessions:open", "servers:read"]},
            },
        )
        assert status == 201, minted
        other = minted["token"]
        for method, suffix in (("GET", ""), ("POST", "/tickets"), ("POST", "/close")):
            status, body, _ = await terminals.call(
                method, session_path + suffix, token=other, json={} if method == "POST" else None
            )
            assert status == 404, (suffix, body)
        _, listing, _ = await terminals.call("GET", "/terminal-sessions", token=other)
        assert listing["items"] == []
        _, listing, _ = await terminals.call("GET", "/terminal-sessions", token=token)
        assert [i["sessionId"] for i in listing["items"]] == [item["sessionId"]]
        status, body, _ = await terminals.call(
            "POST", "/terminal-sessions/expire", token=other, json={}
        )
        assert status == 403, body
        # The other actor's own session is its own: the admin (manage) sees it, may not attach.
        theirs = await opened(terminals, other, scope, command=["/bin/sh"])
        their_path = f"/terminal-sessions/{theirs['sessionId']}"
        status, body, _ = await terminals.call("GET", their_path, token=token)
        assert status == 200
        assert body["item"]["status"] == "detached"
        status, body, _ = await terminals.call(
            "POST", f"{their_path}/tickets", token=token, json={}
        )
        assert status == 403, body

        # A closed session refuses tickets and attachments.
        _, spare, _ = await terminals.call("POST", f"{session_path}/tickets", token=token, json={})
        status, body, _ = await terminals.call(
            "POST", f"{session_path}/close", token=token, json={}
        )
        assert status == 200
        assert body == {"sessionId": item["sessionId"], "closed": True, "status": "closed"}
        status, body, _ = await terminals.call(
            "POST", f"{session_path}/tickets", token=token, json={}
        )
        assert status == 409, body
        refused = await Term.attach(terminals, path, spare["transport"]["ticket"])
        assert refused.controls[0]["type"] == "error"

        # The other actor's session, never attached, expires after the grace period.
        async def expired() -> bool:
            status, body, _ = await terminals.call(
                "POST", "/terminal-sessions/expire", token=token, json={}
            )
            assert status == 200, body
            _, shown, _ = await terminals.call("GET", their_path, token=token)
            return bool(shown["item"]["status"] == "closed")

        await eventually(expired, timeout=GRACE_SECONDS + 10, what="the grace to expire")
    finally:
        await agent.stop()


async def test_host_shell_needs_the_local_setting(
    terminals: Coordinator, token: str, tmp_path: Path
) -> None:
    plain, plain_id = await start_agent(terminals, token, tmp_path / "plain", name="plain")
    allowed, allowed_id = await start_agent(
        terminals, token, tmp_path / "allowed", name="allowed", env=HOST_SHELL
    )
    try:
        status, body = await open_session(
            terminals, token, {"kind": "server", "serverId": plain_id}
        )
        assert status == 403, body
        assert "BERTH_AGENT_ALLOW_HOST_SHELL" in body["error"]["message"]
        item = await opened(terminals, token, {"kind": "server", "serverId": allowed_id})
        term = await attach(terminals, item)
        await term.run("echo host-$((2+3)) && exit 3")
        await term.expect(b"host-5")
        assert await term.end() == {"type": "exit", "exitCode": 3}
        await plain.stop()
        status, body = await open_session(
            terminals, token, {"kind": "server", "serverId": plain_id}
        )
        assert status == 503, body
    finally:
        await plain.stop()
        await allowed.stop()


async def test_flood_stays_bounded_and_other_sessions_stay_responsive(
    terminals: Coordinator, token: str, tmp_path: Path
) -> None:
    agent, server_id = await start_agent(terminals, token, tmp_path / "agent", env=HOST_SHELL)
    try:
        scope = {"kind": "server", "serverId": server_id}
        flood_item = await opened(terminals, token, scope, command=["yes"])
        flood = await attach(terminals, flood_item)
        quiet = await attach(terminals, await opened(terminals, token, scope, command=["/bin/sh"]))
        hub = hub_of(terminals)
        session = hub.get(flood_item["sessionId"])
        assert session is not None
        bound = CREDIT_WINDOW_BYTES + RING_BYTES
        # The flood client reads slowly: a little now and then, for a few seconds.
        peak = 0
        received = 0
        deadline = time.monotonic() + 3.0
        round_trips: list[float] = []
        while time.monotonic() < deadline:
            frame = await flood.ws.receive()
            received += len(frame.data)
            peak = max(peak, session.buffered_bytes(), len(session.ring) + session.in_flight)
            started = time.monotonic()
            await quiet.run(f"echo ok-{len(round_trips)}")
            await quiet.expect(f"ok-{len(round_trips)}\r\n".encode(), timeout=5)
            round_trips.append(time.monotonic() - started)
            await asyncio.sleep(0.1)  # the slow reader's pace is what is tested
        assert received > 0
        assert peak <= bound, (peak, bound)
        assert session.in_flight <= CREDIT_WINDOW_BYTES
        assert max(round_trips) < scaled(2.0), round_trips
        await flood.close()
        await quiet.close()
    finally:
        await agent.stop()


async def test_agent_disconnect_ends_sessions_with_an_error(
    terminals: Coordinator, token: str, tmp_path: Path
) -> None:
    agent, server_id = await start_agent(terminals, token, tmp_path / "agent", env=HOST_SHELL)
    try:
        item = await opened(terminals, token, {"kind": "server", "serverId": server_id})
        term = await attach(terminals, item)
        await agent.stop()
        end = await term.end()
        assert end["type"] == "error", end
        assert end["error"]["code"] == "unavailable", end
        assert term.close_code == 4503, (term.controls, term.close_code)
    finally:
        await agent.stop()


async def test_cli_relays_a_piped_session_and_exits_with_the_remote_code(
    terminals: Coordinator, token: str, tmp_path: Path
) -> None:
    agent, _ = await start_agent(terminals, token, tmp_path / "agent", name="box", env=HOST_SHELL)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from coordinator.client.cli import main; main()",
            "--url",
            terminals.url,
            "--token",
            token,
            "terminal",
            "box",
            "--command",
            "/bin/sh",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
        )
        async with asyncio.timeout(scaled(30)):
            out, err = await process.communicate(b"echo cli-$((4*5))\nexit 4\n")
        assert b"cli-20" in out, (out, err)
        assert process.returncode == 4, (out, err)
    finally:
        await agent.stop()
