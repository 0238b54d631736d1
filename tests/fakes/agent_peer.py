"""A scripted agent: a real berth.v1 websocket client whose every frame the test decides.

It enrolls through the API like a real agent, answers the challenge with ``shared.crypto``, and
then only records what the coordinator sends; the test script replies (``deploy_accepted``,
``deploy_progress``, ``deploy_result``...) with the helpers below.
"""

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp

from shared.crypto import generate_private_key, public_key_text, sign_challenge
from shared.messages import (
    Challenge,
    CoordinatorMessage,
    DeployLogLine,
    DeployProgress,
    DeployResult,
    Hello,
    HostFacts,
    IdSequence,
    Inventory,
    KnownDeployment,
    Welcome,
    decode_coordinator_message,
)
from shared.version import AGENT_CONNECT_PATH, AGENT_ENROLL_PATH, PROTOCOL_VERSION
from shared.wire import WireModel, dump_json
from tests.harness import Coordinator, scaled

M = TypeVar("M", bound=WireModel)

FACTS = HostFacts(
    hostname="fake-agent",
    os="Debian GNU/Linux 12 (bookworm)",
    kernel="6.1.0-test",
    architecture="x86_64",
    cpu_count=2,
    memory_bytes=2 * 1024**3,
    docker_version="24.0.7",
    python_version="3.11.7",
)


class FakeAgent:
    """One enrolled server identity that can connect, record frames and send scripted ones."""

    def __init__(self, coordinator: Coordinator, server_id: str) -> None:
        self.coordinator = coordinator
        self.server_id = server_id
        self._key = generate_private_key()
        self._ids = IdSequence()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[CoordinatorMessage] = asyncio.Queue()
        self.received: list[CoordinatorMessage] = []  # this connection's frames

    @classmethod
    async def enroll(cls, coordinator: Coordinator, admin_token: str, name: str) -> "FakeAgent":
        """Register a server and enroll a fresh key for it through the API."""
        created = await coordinator.add_server(admin_token, name)
        agent = cls(coordinator, str(created["id"]))
        status, body, _ = await coordinator.call(
            "POST",
            AGENT_ENROLL_PATH,
            json={"joinToken": created["joinToken"], "publicKey": public_key_text(agent._key)},
        )
        assert status in (200, 201), body
        return agent

    def next_id(self) -> int:
        """The next outgoing frame id (strictly increasing for the whole identity)."""
        return self._ids.next()

    async def connect(
        self, *, inventory: list[KnownDeployment] | None = None, send_inventory: bool = True
    ) -> None:
        """Dial, run the handshake, optionally send an inventory, then record every frame."""
        assert self.coordinator.http is not None
        url = self.coordinator.url.replace("http://", "ws://") + AGENT_CONNECT_PATH
        self._ws = await self.coordinator.http.ws_connect(url, protocols=(PROTOCOL_VERSION,))
        challenge = decode_coordinator_message(await self._ws.receive_str(timeout=scaled(10)))
        assert isinstance(challenge, Challenge), challenge
        await self.send(
            Hello(
                id=self.next_id(),
                server_id=self.server_id,
                signature=sign_challenge(self._key, challenge.nonce, self.server_id),
                agent_version="fake-0",
                facts=FACTS,
                capabilities=["deploy.v1"],
            )
        )
        welcome = decode_coordinator_message(await self._ws.receive_str(timeout=scaled(10)))
        assert isinstance(welcome, Welcome), welcome
        self._inbox = asyncio.Queue()
        self.received = []  # per connection
        self._reader = asyncio.create_task(self._read(self._ws))
        if send_inventory:
            await self.send(
                Inventory(id=self.next_id(), containers=[], deployments=inventory or [])
            )

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                message = decode_coordinator_message(frame.data)
                self.received.append(message)
                self._inbox.put_nowait(message)

    async def send(self, message: WireModel) -> None:
        """Send one frame."""
        assert self._ws is not None
        await self._ws.send_str(dump_json(message))

    async def expect(self, kind: type[M], timeout: float = 10.0) -> M:
        """Wait for the next frame of type ``kind`` (other frames are skipped, still recorded)."""
        async with asyncio.timeout(scaled(timeout)):
            while True:
                message = await self._inbox.get()
                if isinstance(message, kind):
                    return message

    def count(self, kind: type[WireModel]) -> int:
        """How many frames of ``kind`` arrived so far."""
        return sum(isinstance(m, kind) for m in self.received)

    async def progress(self, deployment_id: str, *lines: dict[str, Any]) -> None:
        """Send a ``deploy_progress`` frame; each line dict needs ``sequence`` and ``message``."""
        now = datetime.now(UTC)
        await self.send(
            DeployProgress(
                id=self.next_id(),
                deployment_id=deployment_id,
                lines=[
                    DeployLogLine.model_validate({"timestamp": now, "phase": "start", **line})
                    for line in lines
                ],
            )
        )

    async def result(self, deployment_id: str, outcome: str, **extra: Any) -> int:
        """Send a ``deploy_result``; return its frame id (the ack's ``re``)."""
        frame_id = self.next_id()
        await self.send(
            DeployResult.model_validate(
                {
                    "id": frame_id,
                    "deploymentId": deployment_id,
                    "outcome": outcome,
                    "finishedAt": datetime.now(UTC),
                    **extra,
                }
            )
        )
        return frame_id

    async def close(self) -> None:
        """Close the link and stop recording."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
