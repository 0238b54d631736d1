"""The coordinator numbers a frame when it writes it (under the session's write lock) and
correlates a reply by the id the request went out with."""

from typing import Any

import orjson
import pytest
from aiohttp import web

from coordinator.hub.session import AgentSession
from shared.errors import Unavailable
from shared.messages import ConnectivityCheck, ErrorMessage, IdGuard, IdSequence, ResourceProbe


class FakeSocket:
    """The coordinator's websocket write side; answers a probe at once, before send returns."""

    closed = False

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.session: AgentSession | None = None

    async def send_str(self, data: str) -> None:
        frame: dict[str, Any] = orjson.loads(data)
        self.ids.append(frame["id"])
        if frame["type"] == "connectivity_check" and self.session is not None:
            error = {"code": "unavailable", "message": "x", "retriable": True, "details": {}}
            reply = ErrorMessage.model_validate({"id": 99, "re": frame["id"], "error": error})
            assert self.session.resolve(frame["id"], reply)


async def test_coordinator_stamps_at_send_and_correlates_by_the_sent_id() -> None:
    socket = FakeSocket()
    session = AgentSession(web.WebSocketResponse(), "srv_x", ids=IdSequence())
    session.ws = socket  # type: ignore[assignment]
    socket.session = session
    early = ResourceProbe(id=session.next_id(), resource_id="res_x")
    await session.send(ResourceProbe(id=session.next_id(), resource_id="res_y"))
    await session.send(early)
    # The error frame answering it is found by the id the request was sent with.
    with pytest.raises(Unavailable):
        await session.request(lambda i: ConnectivityCheck(id=i), timeout=1)
    guard = IdGuard()
    for frame_id in socket.ids:
        guard.accept(frame_id)
