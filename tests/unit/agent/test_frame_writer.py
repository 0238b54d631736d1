"""Frame ids are stamped when a frame is written: a frame built early and sent late (a capacity
reply computed in a thread while log chunks went out) still carries a rising id."""

import asyncio

import orjson

from agent.features import FrameWriter, LinkContext
from shared.messages import (
    UNSTAMPED,
    Heartbeat,
    IdGuard,
    IdSequence,
)
from shared.messages.logs import LogEnd


class Recorder:
    """A socket's write side: records each frame's id, optionally slow for the first frame."""

    def __init__(self, slow_first: bool = False) -> None:
        self.ids: list[int] = []
        self.release = asyncio.Event()
        self._slow_first = slow_first

    async def write(self, frame: str) -> None:
        if self._slow_first and not self.ids:
            self.ids.append(orjson.loads(frame)["id"])
            await self.release.wait()  # a full socket buffer: the writer waits to drain
            return
        self.ids.append(orjson.loads(frame)["id"])


async def test_a_frame_built_early_and_sent_late_gets_a_rising_id() -> None:
    ids = IdSequence()
    recorder = Recorder()
    link = LinkContext(send=FrameWriter(recorder.write, ids).send, ids=ids)
    early = Heartbeat(id=ids.next())  # numbered before its (slow) work, as replies used to be
    await link.send(LogEnd(id=ids.next(), stream_id="s" * 32, reason="history-complete"))
    await link.send(Heartbeat(id=UNSTAMPED))
    await link.send(early)
    guard = IdGuard()
    for frame_id in recorder.ids:
        guard.accept(frame_id)  # the peer's check: strictly rising, nothing refused


async def test_concurrent_sends_are_numbered_in_write_order() -> None:
    ids = IdSequence()
    recorder = Recorder(slow_first=True)
    writer = FrameWriter(recorder.write, ids)
    seen: list[int] = []
    first = asyncio.create_task(writer.send(Heartbeat(id=UNSTAMPED)))
    await asyncio.sleep(0)  # the first frame is being written (and waits to drain)
    others = [
        asyncio.create_task(writer.send_tracked(Heartbeat(id=UNSTAMPED), seen.append))
        for _ in range(3)
    ]
    await asyncio.sleep(0)  # one turn: the three wait behind the first, in order
    recorder.release.set()
    await asyncio.gather(first, *others)
    assert recorder.ids == [1, 2, 3, 4]
    assert seen == [2, 3, 4]  # each tracked sender learned the id its frame went out with
