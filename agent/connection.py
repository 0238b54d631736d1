"""The persistent link: dial out, handshake, serve, and reconnect with capped jittered backoff.

Failures are sorted into two kinds. Transient ones (network, 5xx, coordinator restart, a
replaced connection) lead to a reconnect after a random delay that doubles up to a cap. Fatal
ones (credentials refused, protocol incompatible, TLS verification failed) raise ``FatalError``
so the process exits with ``EXIT_FATAL`` and systemd does not restart it.
"""

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    NegotiationError,
)
from websockets.typing import Subprotocol

from agent.dispatch import Dispatcher, Send
from agent.features import AgentFeature, FrameWriter, LinkContext
from agent.host import collect_facts
from agent.identity import AgentKey
from agent.reachability import ProbeResult, ProbeTiming, Reachability
from agent.runtime import ContainerRuntime
from agent.state import Enrollment
from agent.tls import client_context
from shared.challenge import sign_challenge
from shared.errors import PlatformError
from shared.keepalive import DEFAULT_KEEPALIVE, apply_keepalive
from shared.messages import (
    UNSTAMPED,
    Challenge,
    ErrorMessage,
    Heartbeat,
    Hello,
    IdGuard,
    IdSequence,
    Welcome,
    decode_coordinator_message,
)
from shared.version import (
    AGENT_CONNECT_PATH,
    FATAL_CLOSE_CODES,
    HANDSHAKE_TIMEOUT_SECONDS,
    MAX_FRAME_BYTES,
    PACKAGE_VERSION,
    PROTOCOL_VERSION,
)
from shared.wire import dump_json

logger = logging.getLogger(__name__)


class FatalError(Exception):
    """The coordinator refused this agent for good; retrying would only hammer it."""


class TransientError(Exception):
    """The link failed in a way a later attempt may not.

    ``unreachable`` marks a link lost without a word from the coordinator (no close frame, a
    connect that timed out or found no route): the agent then probes until the network heals
    instead of backing off, see ``agent.reachability``.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter, reset after a link that stayed up."""

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    stable_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Return a random delay in [0, min(cap, base * 2**attempt)] (full jitter)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** min(attempt, 30)))
        return random.uniform(0, ceiling)  # noqa: S311 (jitter, not cryptography)


def websocket_url(coordinator_url: str) -> str:
    """Map ``http(s)://host[/prefix]`` to ``ws(s)://host[/prefix]/agent/v1/connect``."""
    base = coordinator_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + AGENT_CONNECT_PATH
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + AGENT_CONNECT_PATH
    raise FatalError(f"coordinator URL must start with http:// or https://, not {base!r}")


def _classify_close(exc: ConnectionClosed) -> Exception:
    received = exc.rcvd
    if received is not None and received.code in FATAL_CLOSE_CODES:
        return FatalError(
            f"coordinator refused this agent: {received.reason or 'no reason'} "
            f"(close code {received.code})"
        )
    code = received.code if received else "none"
    reason = received.reason if received and received.reason else "connection closed"
    # No close frame from the coordinator: the socket died under us (keepalive or user
    # timeout after a partition, a ping timeout, a reset), so the network may be the problem.
    return TransientError(f"{reason} (close code {code})", unreachable=received is None)


# A backstop for a coordinator whose kernel still answers but whose loop is stuck (about 90 s);
# a silent partition is noticed sooner by the kernel (TCP keepalive and user timeout, see
# shared.keepalive). Rare pings keep 10k idle agents cheap.
AGENT_PING_INTERVAL_SECONDS: Final = 60.0
AGENT_PING_TIMEOUT_SECONDS: Final = 30.0


class Link:
    """One agent's link to its coordinator, kept up until cancelled or refused."""

    def __init__(
        self,
        enrollment: Enrollment,
        key: AgentKey,
        runtime: ContainerRuntime,
        state_dir: Path,
        policy: ReconnectPolicy,
        features: list[AgentFeature] | None = None,
        probe_timing: ProbeTiming | None = None,
    ) -> None:
        self._features = list(features or [])
        self._enrollment = enrollment
        self._key = key
        self._runtime = runtime
        self._state_dir = state_dir
        self._policy = policy
        self._url = websocket_url(enrollment.coordinator_url)
        self._ssl = client_context(enrollment.ca_file) if self._url.startswith("wss") else None
        self._reachability = Reachability(self._url, probe_timing)

    async def run_forever(self) -> None:
        """Connect, serve, and reconnect until cancelled; raise ``FatalError`` when refused."""
        attempt = 0
        last_error = ""
        # Set when a probe got an answer: if the dial after it fails anyway, the network is fine
        # and the coordinator is slow or overloaded, so back off instead of probing again.
        answered = False
        while True:
            started = time.monotonic()
            unreachable = False
            try:
                await self._connect_once()
                error = "coordinator closed the link"
            except TransientError as exc:
                error = str(exc)
                unreachable = exc.unreachable
            if time.monotonic() - started >= self._policy.stable_seconds:
                attempt = 0
                answered = False
            delay = self._policy.delay(attempt)
            attempt += 1
            # Log each new kind of failure once at WARNING; repeats only at INFO.
            level = logging.WARNING if error != last_error else logging.INFO
            last_error = error
            if unreachable and not answered:
                logger.log(level, "link lost: %s; probing until the coordinator answers", error)
                answered = await self._reachability.wait_after_loss(delay) is ProbeResult.OPEN
                continue
            answered = False
            logger.log(
                level, "link down: %s; reconnecting in %.1f s (attempt %d)", error, delay, attempt
            )
            await asyncio.sleep(delay)

    async def _connect_once(self) -> None:
        try:
            async with connect(
                self._url,
                subprotocols=[Subprotocol(PROTOCOL_VERSION)],
                ssl=self._ssl,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                open_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                ping_interval=AGENT_PING_INTERVAL_SECONDS,
                ping_timeout=AGENT_PING_TIMEOUT_SECONDS,
                close_timeout=5,
                user_agent_header=f"berth-agent/{PACKAGE_VERSION}",
            ) as ws:
                # The kernel notices a silent partition; no Python work per idle link.
                apply_keepalive(ws.transport.get_extra_info("socket"), DEFAULT_KEEPALIVE)
                await self._serve(ws)
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace")[:300] if exc.response.body else ""
            if 400 <= status < 500:
                raise FatalError(
                    f"coordinator refused the connection with HTTP {status}: {body or exc}"
                ) from exc
            raise TransientError(f"coordinator answered HTTP {status}") from exc
        except NegotiationError as exc:
            raise FatalError(f"protocol negotiation failed: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise FatalError(
                f"TLS verification of the coordinator failed: {exc.verify_message}"
                "; enroll with --ca-file if it uses a private CA"
            ) from exc
        except ConnectionClosed as exc:
            classified = _classify_close(exc)
            raise classified from exc
        except (InvalidHandshake, OSError, TimeoutError, EOFError) as exc:
            # A refusal (RST) or a handshake answer proves the network works: back off.
            unreachable = isinstance(exc, (TimeoutError, OSError)) and not isinstance(
                exc, (ConnectionRefusedError, socket.gaierror)
            )
            raise TransientError(
                f"cannot reach {self._url}: {str(exc) or type(exc).__name__}",
                unreachable=unreachable,
            ) from exc

    async def _handshake(self, ws: ClientConnection, ids: IdSequence, guard: IdGuard) -> Welcome:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
            challenge = decode_coordinator_message(await ws.recv())
            if not isinstance(challenge, Challenge):
                raise TransientError(f"expected a challenge, got {challenge.type!r}")
            guard.accept(challenge.id)
            facts = await collect_facts(self._runtime)
            server_id = self._enrollment.server_id
            await ws.send(
                dump_json(
                    Hello(
                        id=ids.next(),
                        server_id=server_id,
                        signature=sign_challenge(self._key, challenge.nonce, server_id),
                        agent_version=PACKAGE_VERSION,
                        facts=facts,
                        capabilities=self._capabilities(),
                    )
                )
            )
            welcome = decode_coordinator_message(await ws.recv())
        if isinstance(welcome, ErrorMessage):
            raise TransientError(f"handshake error: {welcome.error.message}")
        if not isinstance(welcome, Welcome):
            raise TransientError(f"expected a welcome, got {welcome.type!r}")
        guard.accept(welcome.id)
        return welcome

    def _capabilities(self) -> list[str]:
        capabilities: list[str] = []
        for feature in self._features:
            capabilities.extend(feature.capabilities)
        return capabilities

    async def _serve(self, ws: ClientConnection) -> None:
        ids = IdSequence()
        guard = IdGuard()
        try:
            welcome = await self._handshake(ws, ids, guard)
        except PlatformError as exc:
            raise TransientError(f"bad handshake frame: {exc.message}") from exc
        except TimeoutError as exc:
            raise TransientError("handshake timed out") from exc
        logger.info(
            "connected to %s as %s (%s)",
            self._enrollment.coordinator_url,
            self._enrollment.server_name,
            welcome.server_id,
        )

        # Every frame after the hello goes through one writer that numbers it as it is sent.
        writer = FrameWriter(ws.send, ids)
        send = writer.send
        link = LinkContext(send=send, ids=ids, tracked=writer.send_tracked)
        dispatcher = Dispatcher(self._runtime, self._state_dir, self._features, link)
        closed: ConnectionClosed | None = None
        async with asyncio.TaskGroup() as tasks:
            heartbeat = tasks.create_task(
                _until_closed(self._heartbeats(send, ids, welcome.heartbeat_seconds))
            )
            # In the features' order: deployments first (inventory, then the journal's replay).
            attached = [
                tasks.create_task(_until_closed(_attach_feature(feature, link)))
                for feature in self._features
            ]
            try:
                async for frame in ws:
                    if isinstance(frame, bytes):
                        continue  # berth.v1 has no binary frames from the coordinator
                    try:
                        message = decode_coordinator_message(frame)
                        guard.accept(message.id)
                    except PlatformError as exc:
                        re = exc.details.get("re")
                        await send(
                            ErrorMessage(
                                id=UNSTAMPED,
                                re=re if isinstance(re, int) else None,
                                error=exc.to_body(),
                            )
                        )
                        continue
                    try:
                        if dispatcher.deliver(message):
                            continue  # a feature took it, in frame order, without blocking
                    except PlatformError as exc:
                        await link.fail(message.id, exc)
                        continue
                    # Each request runs in its own task so a slow one never blocks the reader.
                    tasks.create_task(_until_closed(dispatcher.handle(message, send)))
            except ConnectionClosed as exc:
                # Kept aside: raised inside the task group it would arrive wrapped in a group.
                closed = exc
            finally:
                heartbeat.cancel()
                for task in attached:
                    task.cancel()
                for feature in self._features:
                    try:
                        feature.detached(link)
                    except Exception:
                        logger.exception("a feature failed to detach from the link")
        if closed is not None:
            raise closed
        # The iterator ended: the coordinator closed the socket (normally or with a code).
        if ws.close_code in FATAL_CLOSE_CODES:
            raise FatalError(
                f"coordinator refused this agent: {ws.close_reason or 'no reason'} "
                f"(close code {ws.close_code})"
            )

    async def _heartbeats(self, send: Send, ids: IdSequence, interval: float) -> None:
        # A random first delay spreads heartbeats of agents that reconnected together.
        await asyncio.sleep(random.uniform(0.5, 1.0) * interval)  # noqa: S311
        while True:
            await send(Heartbeat(id=UNSTAMPED))
            await asyncio.sleep(interval)


async def _attach_feature(feature: AgentFeature, link: LinkContext) -> None:
    try:
        await feature.attached(link)
    except (ConnectionClosed, asyncio.CancelledError):
        raise
    except Exception:
        # One feature failing must not take the link (and the others) down with it.
        logger.exception("feature %s failed on this link", type(feature).__name__)


async def _until_closed(work: Coroutine[object, object, None]) -> None:
    """Run ``work``; a closed socket ends it quietly (the reader reports the close)."""
    with contextlib.suppress(ConnectionClosed):
        await work
