"""Spool delivery: ack deletes, no ack resends the same samples, a dropped link loses nothing."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from agent.features import LinkContext
from agent.monitoring.delivery import Delivery
from agent.monitoring.spool import Spool
from shared.errors import Unavailable
from shared.messages import AgentMessage, IdSequence
from shared.messages.monitoring import Sample, SampleBatch, SamplesAck, Totals
from tests.polling import eventually


class FakeLink:
    """A link that records what is sent on it."""

    def __init__(self) -> None:
        self.sent: list[SampleBatch] = []
        self.context = LinkContext(send=self.send, ids=IdSequence())

    async def send(self, message: AgentMessage) -> None:
        assert isinstance(message, SampleBatch)
        self.sent.append(message)


def make(sequence: int) -> Sample:
    return Sample(
        sample_id=uuid.uuid4().hex,
        sequence=sequence,
        observed_at=datetime.now(UTC),
        interval_seconds=15,
        totals=Totals(),
    )


def ack(batch: SampleBatch) -> SamplesAck:
    return SamplesAck(id=1000 + batch.id, re=batch.id, stored=len(batch.samples), duplicates=0)


def ids(batch: SampleBatch) -> list[str]:
    return [s.sample_id for s in batch.samples]


@asynccontextmanager
async def delivering(delivery: Delivery, link: FakeLink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(delivery.deliver(link.context))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        delivery.detached(link.context)


async def test_ack_deletes_then_waits_for_the_next_sample(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 1000)
    stored = [spool.append(make) for _ in range(60)]
    # No resend by timeout in this test, however slow the machine: it counts frames sent.
    delivery = Delivery(spool, ack_timeout=3600)
    link = FakeLink()
    async with delivering(delivery, link):
        await eventually(_sent(link, 1), what="first batch")
        first = link.sent[0]
        # At most 50 per frame, oldest first, in spool order.
        assert ids(first) == [s.sample_id for s in stored[:50]]
        delivery.acknowledge(ack(first), link.context)
        await eventually(_sent(link, 2), what="second batch")
        assert ids(link.sent[1]) == [s.sample_id for s in stored[50:]]
        delivery.acknowledge(ack(link.sent[1]), link.context)
        await eventually(_spool_count(spool, 0), what="spool emptied")
        assert len(link.sent) == 2

        newer = spool.append(make)
        delivery.notify()
        await eventually(_sent(link, 3), what="batch of the new sample")
        assert ids(link.sent[2]) == [newer.sample_id]
    spool.close()


async def test_no_ack_resends_the_same_samples(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 1000)
    stored = [spool.append(make) for _ in range(3)]
    delivery = Delivery(spool, ack_timeout=0.05, max_backoff=0.01)
    link = FakeLink()
    async with delivering(delivery, link):
        await eventually(_sent(link, 2), what="a resend")
        first, second = link.sent[:2]
        assert second.id != first.id
        assert ids(first) == ids(second) == [s.sample_id for s in stored]
        assert spool.count() == 3
        # A late ack of the first frame is not mistaken for the current one.
        delivery.acknowledge(ack(first), link.context)
        await eventually(_sent(link, 3), what="another resend")
        assert spool.count() == 3
        delivery.acknowledge(ack(link.sent[-1]), link.context)
        await eventually(_spool_count(spool, 0), what="spool emptied")
    assert delivery.resends >= 2
    spool.close()


async def test_a_refused_batch_is_resent_after_a_pause_not_the_ack_timeout(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 1000)
    stored = [spool.append(make) for _ in range(2)]
    delivery = Delivery(spool, ack_timeout=30.0, max_backoff=0.01)
    link = FakeLink()
    async with delivering(delivery, link):
        await eventually(_sent(link, 1), what="first batch")
        first = link.sent[0]
        behind = Unavailable("the coordinator is behind on storing samples")
        assert not delivery.refused(first.id + 100, behind, link.context)  # not ours
        assert delivery.refused(first.id, behind, link.context)
        await eventually(_sent(link, 2), what="the resend", timeout=5.0)
        assert ids(link.sent[1]) == [s.sample_id for s in stored]
        assert spool.count() == 2  # nothing deleted by a refusal
        delivery.acknowledge(ack(link.sent[1]), link.context)
        await eventually(_spool_count(spool, 0), what="spool emptied")
    assert delivery.resends == 1
    spool.close()


async def test_unanswered_batches_back_off_instead_of_spinning(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 1000)
    spool.append(make)
    delivery = Delivery(spool, ack_timeout=0.01)
    link = FakeLink()
    async with delivering(delivery, link):
        await eventually(_sent(link, 1), what="first batch")
        await asyncio.sleep(0.3)  # a window shorter than the first backoff (0.5 to 1 s)
        assert len(link.sent) == 1
    spool.close()


async def test_link_drop_mid_batch_loses_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 1000)
    stored = [spool.append(make) for _ in range(4)]
    delivery = Delivery(spool)
    old = FakeLink()
    async with delivering(delivery, old):
        await eventually(_sent(old, 1), what="batch on the first link")
    # The link died before the ack: an ack arriving for it now changes nothing.
    delivery.acknowledge(ack(old.sent[0]), old.context)
    assert spool.count() == 4

    new = FakeLink()
    async with delivering(delivery, new):
        await eventually(_sent(new, 1), what="batch on the new link")
        assert ids(new.sent[0]) == [s.sample_id for s in stored]
        delivery.acknowledge(ack(new.sent[0]), new.context)
        await eventually(_spool_count(spool, 0), what="spool emptied")
    spool.close()


def _sent(link: FakeLink, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(link.sent) >= count

    return check


def _spool_count(spool: Spool, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await asyncio.to_thread(spool.count) == count

    return check
