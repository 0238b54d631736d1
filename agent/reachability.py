"""Waiting out a lost link: probe the coordinator cheaply and often, dial once it answers.

After a link is lost without a word (partition, dead router) the usual jittered backoff would
grow toward its cap, and a healed network would wait up to a minute for the next dial. Instead
the agent sends one TCP connect (a SYN, nothing else) about every second and dials as soon as
one completes. A refused connect means the network is back but the coordinator is not
listening (restart, crash): then the long jittered backoff applies, so thousands of agents
returning to a restarted coordinator still spread out.
"""

import asyncio
import enum
import logging
import random
from dataclasses import dataclass

from websockets.proxy import get_proxy, parse_proxy
from websockets.uri import parse_uri

logger = logging.getLogger(__name__)


class ProbeResult(enum.Enum):
    """What one TCP connect to the coordinator (or its proxy) found."""

    OPEN = "open"  # something accepted: dial now
    REFUSED = "refused"  # the host answered with a reset: nothing listens yet
    SILENT = "silent"  # no answer in time: still cut off


@dataclass(frozen=True)
class ProbeTiming:
    """How often to probe while cut off, and how much to spread the dials after a heal."""

    interval_min_seconds: float = 0.5
    interval_max_seconds: float = 1.0
    timeout_seconds: float = 1.0
    # Agents cut off together see the heal together; a short random wait spreads their dials.
    dial_jitter_seconds: float = 1.5


def probe_target(websocket_url: str) -> tuple[str, int]:
    """Return the host and port a dial to ``websocket_url`` connects to first (proxy aware)."""
    uri = parse_uri(websocket_url)
    proxy = get_proxy(uri)
    if proxy is not None:
        parsed = parse_proxy(proxy)
        return parsed.host, parsed.port
    return uri.host, uri.port


async def probe(host: str, port: int, timeout: float) -> ProbeResult:
    """Open and at once close one TCP connection to ``host:port``."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(asyncio.Protocol, host, port)
    except ConnectionRefusedError:
        return ProbeResult.REFUSED
    except (OSError, TimeoutError):
        # Unreachable, timed out, no route, name not resolvable: all mean "not yet".
        return ProbeResult.SILENT
    transport.close()
    return ProbeResult.OPEN


class Reachability:
    """Decides when to dial again after a link was lost."""

    def __init__(self, websocket_url: str, timing: ProbeTiming | None = None) -> None:
        self._host, self._port = probe_target(websocket_url)
        self._timing = timing or ProbeTiming()

    async def wait_after_loss(self, backoff_seconds: float) -> ProbeResult:
        """Return when it is time to dial: soon after a probe connects, or after the backoff
        when a probe is refused. Probes go on (cheaply) for as long as nothing answers.
        """
        timing = self._timing
        while True:
            result = await probe(self._host, self._port, timing.timeout_seconds)
            if result is ProbeResult.OPEN:
                await asyncio.sleep(random.uniform(0, timing.dial_jitter_seconds))  # noqa: S311
                return result
            if result is ProbeResult.REFUSED:
                await asyncio.sleep(backoff_seconds)
                return result
            await asyncio.sleep(
                random.uniform(timing.interval_min_seconds, timing.interval_max_seconds)  # noqa: S311
            )
