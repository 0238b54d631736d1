"""How the link waits between dials: a silent loss waits for a probe, not for the backoff."""

import asyncio
from pathlib import Path
from typing import cast

import pytest

from agent.connection import FatalError, Link, ReconnectPolicy, TransientError
from agent.identity import AgentKey
from agent.reachability import ProbeResult
from agent.runtime import ContainerRuntime
from agent.state import Enrollment

LOST = TransientError("connection closed (close code none)", unreachable=True)
REFUSED = TransientError("cannot reach: connection refused")
DONE = FatalError("end of the script")


def _scripted_link(
    monkeypatch: pytest.MonkeyPatch, policy: ReconnectPolicy, outcomes: list[Exception]
) -> tuple[Link, list[float]]:
    """A link whose dials fail as scripted and whose probe answers at once; returns the
    backoff delays the probe was given."""
    enrollment = Enrollment("http://127.0.0.1:9", "srv_1", "web-1", "fp", None)
    runtime = cast(ContainerRuntime, object())
    link = Link(enrollment, AgentKey.generate(), runtime, Path("/nonexistent"), policy)
    script = iter(outcomes)
    probed: list[float] = []

    async def dial() -> None:
        raise next(script)

    async def probe(backoff_seconds: float) -> ProbeResult:
        probed.append(backoff_seconds)
        return ProbeResult.OPEN

    monkeypatch.setattr(link, "_connect_once", dial)
    monkeypatch.setattr(link._reachability, "wait_after_loss", probe)
    return link, probed


async def test_a_silent_loss_dials_when_the_probe_answers_not_after_the_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hour = ReconnectPolicy(base_seconds=3600, cap_seconds=3600)
    link, probed = _scripted_link(monkeypatch, hour, [LOST, DONE])
    async with asyncio.timeout(5):  # the backoff alone would be up to an hour
        with pytest.raises(FatalError):
            await link.run_forever()
    assert len(probed) == 1


async def test_a_dial_failing_right_after_a_probe_answered_backs_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = ReconnectPolicy(base_seconds=0.01, cap_seconds=0.01)
    link, probed = _scripted_link(monkeypatch, short, [LOST, LOST, LOST, DONE])
    with pytest.raises(FatalError):
        await link.run_forever()
    # Probe, dial fails anyway (network fine, coordinator slow): back off, then probe again.
    assert len(probed) == 2


async def test_a_refusal_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    short = ReconnectPolicy(base_seconds=0.01, cap_seconds=0.01)
    link, probed = _scripted_link(monkeypatch, short, [REFUSED, REFUSED, DONE])
    with pytest.raises(FatalError):
        await link.run_forever()
    assert probed == []
