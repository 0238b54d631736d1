"""The agent's log feature against a fake Docker API: credit accounting, resume, end, close."""

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from typing import Any, cast

from agent.features import LinkContext
from agent.logstream import cursor
from agent.logstream.feature import LogFeature, select_sources
from agent.runtime import ContainerInfo, ContainerRuntime
from shared.messages import AgentMessage, ErrorMessage, IdSequence
from shared.messages.logs import LogChunk, LogClose, LogCredit, LogEnd, LogOpen, LogOpened

CID = "a" * 64
BASE_NS = 1767323045_000000000


def _log(lines: list[tuple[int, str]], kind: int = 1) -> bytes:
    out = b""
    for ts_ns, text in lines:
        stamp = f"2026-01-02T03:04:{5 + (ts_ns - BASE_NS) // 10**9:02d}"
        payload = f"{stamp}.{(ts_ns - BASE_NS) % 10**9:09d}Z {text}\n".encode()
        out += struct.pack(">BxxxL", kind, len(payload)) + payload
    return out


class FakeResponse:
    """Looks like an aiohttp response to the reader: ``content.iter_any()`` and ``close()``."""

    def __init__(self, data: bytes, keep_open: bool) -> None:
        self._data = data
        self._keep_open = keep_open
        self.closed = asyncio.Event()
        self.content = self

    async def iter_any(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 1000):  # arbitrary transport cuts
            yield self._data[start : start + 1000]
        if self._keep_open:
            await asyncio.Event().wait()

    def close(self) -> None:
        self.closed.set()


class FakeApi:
    def __init__(self, data: bytes, *, containers: list[ContainerInfo] | None = None,
                 keep_open: bool = False) -> None:  # fmt: skip
        self.data = data
        self.keep_open = keep_open
        self.found = containers if containers is not None else [
            ContainerInfo(CID, "dep_1", 100, True)
        ]  # fmt: skip
        self.opened: list[dict[str, Any]] = []
        self.responses: list[FakeResponse] = []

    async def log_sources(self, resource_id: str) -> list[ContainerInfo]:
        return self.found

    async def uses_tty(self, container_id: str) -> bool:
        return False

    async def open_logs(self, container_id: str, **params: Any) -> FakeResponse:
        self.opened.append({"container_id": container_id, **params})
        response = FakeResponse(self.data, self.keep_open)
        self.responses.append(response)
        return response

    async def close(self) -> None:
        pass


class Outbox:
    def __init__(self) -> None:
        self.sent: list[AgentMessage] = []
        self.arrived = asyncio.Event()

    async def send(self, message: AgentMessage) -> None:
        self.sent.append(message)
        self.arrived.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]

    async def wait_for(self, check: Any) -> None:
        async with asyncio.timeout(5):
            while not check():
                self.arrived.clear()
                await self.arrived.wait()


async def _running(api: FakeApi) -> tuple[LogFeature, asyncio.Task[None], Outbox, LinkContext]:
    feature = LogFeature(cast(ContainerRuntime, api))
    task = asyncio.create_task(feature.run())
    await asyncio.sleep(0)  # one turn so run() is started before frames arrive
    outbox = Outbox()
    return feature, task, outbox, LinkContext(send=outbox.send, ids=IdSequence())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_history_is_lossless_and_never_exceeds_credit() -> None:
    lines = [(BASE_NS + n, f"line-{n}") for n in range(5000)]
    feature, task, outbox, link = await _running(FakeApi(_log(lines)))
    try:
        feature.receive(LogOpen(id=7, stream_id="s1", resource_id="res_1", initial_credit=2), link)
        await outbox.wait_for(lambda: len(outbox.of(LogChunk)) == 2)
        for _ in range(20):
            await asyncio.sleep(0)  # give a credit leak turns to show: nothing may arrive
        assert len(outbox.of(LogChunk)) == 2  # out of credit: the stream waits
        assert outbox.of(LogEnd) == []
        opened = outbox.of(LogOpened)[0]
        assert (opened.re, [s.container_id for s in opened.sources]) == (7, [CID[:12]])

        feature.receive(LogCredit(id=8, stream_id="s1", chunks=5), link)
        await outbox.wait_for(lambda: bool(outbox.of(LogEnd)))
        chunks = outbox.of(LogChunk)
        assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
        assert len(chunks) <= 7
        messages = [e["message"] for c in chunks for e in c.entries]
        assert messages == [f"line-{n}" for n in range(5000)]
        assert outbox.of(LogEnd)[0].reason == "history-complete"
        last = chunks[-1].entries[-1]
        assert cursor.decode(last["cursor"]) == {CID[:12]: (BASE_NS + 4999, 0)}
        assert last["timestamp"] == "2026-01-02T03:04:05.000004999Z"
        for chunk in chunks:  # every frame stays far below the 1 MiB limit
            assert len(chunk.model_dump_json()) < 512 * 1024
    finally:
        await _stop(task)


async def test_resume_skips_exactly_up_to_the_cursor_even_with_equal_timestamps() -> None:
    # Three lines share each timestamp, as Docker may write them.
    lines = [(BASE_NS + n // 3, f"line-{n}") for n in range(30)]
    feature, task, outbox, link = await _running(FakeApi(_log(lines)))
    try:
        resume = cursor.encode({CID[:12]: (BASE_NS + 4, 1)})  # = line-13
        feature.receive(
            LogOpen(id=1, stream_id="s2", resource_id="res_1", cursor=resume, tail_lines=5), link
        )
        await outbox.wait_for(lambda: bool(outbox.of(LogEnd)))
        messages = [e["message"] for c in outbox.of(LogChunk) for e in c.entries]
        assert messages == [f"line-{n}" for n in range(14, 30)]
        api = cast(FakeApi, feature._api)
        assert api.opened[0]["since"] == cursor.since_for((BASE_NS + 4, 1))
        assert api.opened[0]["tail"] is None  # a resumed stream is never cut by a tail
    finally:
        await _stop(task)


async def test_follow_ends_when_the_containers_exit_and_close_stops_the_reader() -> None:
    api = FakeApi(_log([(BASE_NS, "only")]))
    feature, task, outbox, link = await _running(api)
    try:
        feature.receive(LogOpen(id=1, stream_id="f1", resource_id="r", follow=True), link)
        await outbox.wait_for(lambda: bool(outbox.of(LogEnd)))
        assert outbox.of(LogEnd)[0].reason == "container-exited"

        api.keep_open = True
        feature.receive(LogOpen(id=2, stream_id="f2", resource_id="r", follow=True), link)
        await outbox.wait_for(lambda: len(outbox.of(LogChunk)) == 2)
        feature.receive(LogClose(id=3, stream_id="f2"), link)
        await asyncio.wait_for(api.responses[-1].closed.wait(), 5)
        assert len(outbox.of(LogEnd)) == 1  # a closed stream just stops

        # Link loss stops the streams of that link the same way.
        feature.receive(LogOpen(id=4, stream_id="f3", resource_id="r", follow=True), link)
        await outbox.wait_for(lambda: len(outbox.of(LogChunk)) == 3)
        feature.detached(link)
        await asyncio.wait_for(api.responses[-1].closed.wait(), 5)
    finally:
        await _stop(task)


async def test_no_containers_is_a_not_found_error_reply() -> None:
    feature, task, outbox, link = await _running(FakeApi(b"", containers=[]))
    try:
        feature.receive(LogOpen(id=9, stream_id="n", resource_id="res_none"), link)
        await outbox.wait_for(lambda: bool(outbox.of(ErrorMessage)))
        error = outbox.of(ErrorMessage)[0]
        assert (error.re, error.error.code) == (9, "not_found")
    finally:
        await _stop(task)


def test_sources_are_the_newest_deployment_or_the_one_asked_for() -> None:
    old = ContainerInfo("o" * 64, "dep_old", 100, False)
    new_a = ContainerInfo("b" * 64, "dep_new", 200, True)
    new_b = ContainerInfo("a" * 64, "dep_new", 201, True)
    assert select_sources([new_b, old, new_a], None) == [new_a, new_b]
    assert select_sources([new_b, old, new_a], "dep_old") == [old]
    assert select_sources([], None) == []
