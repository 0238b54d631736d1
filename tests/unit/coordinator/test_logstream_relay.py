"""The coordinator's log relay without a network: credit-bounded queues, ends, masking, views."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from coordinator.api.runtime_logs import RuntimeLogLine, parse_since
from coordinator.hub.session import AgentSession
from coordinator.logstream.masking import LineMasker
from coordinator.logstream.relay import LogRelay
from coordinator.logstream.view import LineView
from shared.errors import InvalidRequest
from shared.messages import CoordinatorMessage
from shared.messages.logs import LogChunk, LogClose, LogCredit, LogEnd, LogLine, LogOpen, LogOpened


class FakeSession:
    """Records frames; answers ``log_open`` with ``log_opened`` (the relay's only request)."""

    def __init__(self, server_id: str = "srv_1") -> None:
        self.server_id = server_id
        self.sent: list[CoordinatorMessage] = []
        self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def send(self, message: CoordinatorMessage) -> None:
        self.sent.append(message)

    async def request(self, build: Any, timeout: float) -> LogOpened:
        message = build(self.next_id())
        assert isinstance(message, LogOpen)
        self.sent.append(message)
        return LogOpened(id=1, re=message.id, stream_id=message.stream_id)


def _chunk(
    stream_id: str, seq: int, messages: list[str] | None = None, dropped: int = 0
) -> LogChunk:
    entries: list[LogLine] = [
        {
            "container": "abc123abc123",
            "deployment": "dep_1",
            "stream": "stdout",
            "timestamp": f"2026-01-02T03:04:05.{n:09d}Z",
            "cursor": f"c1.abc123abc123-{n}-0",
            "message": text,
        }
        for n, text in enumerate(messages if messages is not None else [f"m{seq}"])
    ]
    return LogChunk(id=seq, stream_id=stream_id, seq=seq, entries=entries, dropped=dropped)


async def _opened(relay: LogRelay, session: FakeSession, credit: int = 3) -> Any:
    return await relay.open(cast(AgentSession, session), {"resource_id": "res_1"}, credit=credit)


async def test_a_slow_consumer_never_blocks_on_message_and_credit_flows_back() -> None:
    relay, session = LogRelay(), FakeSession()
    stream = await _opened(relay, session)
    agent = cast(AgentSession, session)
    for seq in (1, 2, 3):  # the agent's whole credit, nobody reading
        await asyncio.wait_for(relay.on_message(agent, _chunk(stream.stream_id, seq)), 0.5)
    assert stream.queued == 3

    first = await stream.next(1)
    assert isinstance(first, LogChunk)
    assert first.seq == 1
    await stream.grant(1)
    credit = session.sent[-1]
    assert isinstance(credit, LogCredit)
    assert (credit.stream_id, credit.chunks) == (stream.stream_id, 1)

    await relay.on_message(agent, _chunk(stream.stream_id, 4))
    await relay.on_message(agent, LogEnd(id=9, stream_id=stream.stream_id, reason="closed"))
    got = [await stream.next(1) for _ in range(4)]
    assert [g.seq for g in got[:3]] == [2, 3, 4]  # chunks first, in order, then the end
    assert isinstance(got[3], LogEnd)
    assert relay.open_streams == 0
    await relay.release(stream)
    assert not any(isinstance(m, LogClose) for m in session.sent)  # it had ended by itself


async def test_exceeding_credit_ends_the_stream_and_closes_it_at_the_agent() -> None:
    relay, session = LogRelay(), FakeSession()
    stream = await _opened(relay, session, credit=1)
    agent = cast(AgentSession, session)
    await relay.on_message(agent, _chunk(stream.stream_id, 1))
    await relay.on_message(agent, _chunk(stream.stream_id, 2))  # one too many
    assert isinstance(session.sent[-1], LogClose)
    assert isinstance(await stream.next(1), LogChunk)
    end = await stream.next(1)
    assert isinstance(end, LogEnd)
    assert end.reason == "error"


async def test_agent_loss_ends_its_streams_and_client_leaving_sends_close() -> None:
    relay, session, other = LogRelay(), FakeSession(), FakeSession("srv_2")
    lost = await _opened(relay, session)
    kept = await _opened(relay, other)
    relay.on_disconnected(cast(AgentSession, session))
    end = await lost.next(1)
    assert isinstance(end, LogEnd)
    assert "disconnected" in end.message
    assert "srv_1" in end.message  # the client learns which server's agent was lost
    assert await kept.next(0.01) is None  # the other agent's stream is untouched
    # Frames of an unknown or foreign stream are ignored.
    await relay.on_message(cast(AgentSession, session), _chunk(kept.stream_id, 1))
    assert kept.queued == 0
    await relay.release(kept)
    await relay.release(kept)
    assert [type(m) for m in other.sent] == [LogOpen, LogClose]


def test_masking_replaces_every_secret_and_flags_the_line() -> None:
    masker = LineMasker(["hunter22", "hunter2", "ab", ""])
    assert masker.mask_all(["nothing here", "still nothing"]) is None
    assert masker.mask_all(["x=hunter22 y=hunter2", "clean", "ab stays"]) == [
        ("x=**** y=****", True),
        ("clean", False),
        ("ab stays", False),
    ]
    assert not LineMasker([]).active
    assert LineMasker([]).mask_all(["hunter2"]) is None


def test_view_lines_match_the_documented_model() -> None:
    view = LineView("res_1", "web", LineMasker(["topsecret"]))
    lines = view.lines(_chunk("s", 1, ["a", "key=topsecret"]))
    parsed = [RuntimeLogLine.model_validate(line) for line in lines]
    assert [p.model_dump(by_alias=True) for p in parsed] == lines
    assert [(p.sequence, p.message, p.masked) for p in parsed] == [
        (1, "a", False),
        (2, "key=****", True),
    ]
    assert view.lines(_chunk("s", 2, ["b"]))[0]["sequence"] == 3


def test_since_accepts_iso_and_relative_ages() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2026-01-02T03:00:00Z") == datetime(2026, 1, 2, 3, tzinfo=UTC)
    assert parse_since("2026-01-02T03:00:00") == datetime(2026, 1, 2, 3, tzinfo=UTC)
    assert parse_since(None) is None
    for bad in ("yesterday", "10x", "-5m"):
        with pytest.raises(InvalidRequest):
            parse_since(bad)
