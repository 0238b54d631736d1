"""After a silent loss the agent probes and dials once the coordinator answers, not after the
backoff; a refusal keeps the backoff."""

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from agent import reachability
from agent.reachability import ProbeResult, ProbeTiming, Reachability, probe, probe_target

FAST = ProbeTiming(
    interval_min_seconds=0.01, interval_max_seconds=0.02, timeout_seconds=0.2, dial_jitter_seconds=0
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


async def test_probe_tells_open_from_refused(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    assert await probe("127.0.0.1", port, 2.0) is ProbeResult.OPEN
    listener.close()
    assert await probe("127.0.0.1", port, 2.0) is ProbeResult.REFUSED


async def test_probe_that_gets_no_answer_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*_: object, **__: object) -> None:
        await asyncio.sleep(3600)  # a peer that never answers: the probe's timeout must end it

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", never)
    assert await probe("127.0.0.1", 9, 0.05) is ProbeResult.SILENT


async def test_a_heal_is_dialled_at_once_however_long_the_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([ProbeResult.SILENT] * 5 + [ProbeResult.OPEN])
    asked: list[tuple[str, int]] = []

    async def scripted(host: str, port: int, timeout: float) -> ProbeResult:
        asked.append((host, port))
        return next(answers)

    monkeypatch.setattr(reachability, "probe", scripted)
    started = time.monotonic()
    result = await Reachability(
        "wss://berth.example.com:8443/agent/v1/connect", FAST
    ).wait_after_loss(backoff_seconds=60)
    assert result is ProbeResult.OPEN
    assert time.monotonic() - started < 5
    assert asked == [("berth.example.com", 8443)] * 6


async def test_a_refusal_keeps_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(host: str, port: int, timeout: float) -> ProbeResult:
        return ProbeResult.REFUSED

    monkeypatch.setattr(reachability, "probe", refused)
    started = time.monotonic()
    result = await Reachability("ws://127.0.0.1:7420/agent/v1/connect", FAST).wait_after_loss(0.3)
    assert result is ProbeResult.REFUSED
    assert time.monotonic() - started >= 0.3


def test_probe_goes_to_the_proxy_when_one_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert probe_target("wss://berth.example.com/agent/v1/connect") == ("berth.example.com", 443)
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    assert probe_target("wss://berth.example.com/agent/v1/connect") == ("proxy.internal", 3128)
