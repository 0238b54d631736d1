"""Certificates: facts and failed attempts the agents report, imports, and their API rules."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.certificates.imports import served_set
from coordinator.certificates.ingest import apply_report
from coordinator.domains.dns_check import Resolver
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.secrets import Keyring
from shared.errors import Conflict, RuntimeFailed, Unavailable
from shared.messages import UNSTAMPED, Hello
from shared.messages.certificates import (
    CERTIFICATES_CAPABILITY,
    CERTIFICATES_RENEW_CAPABILITY,
    CERTIFICATES_REVOKE_CAPABILITY,
    CertificateLoad,
    CertificateReport,
    CertificateRetry,
    CertificateRevoke,
    CertificateRevokeResult,
)

logger = logging.getLogger(__name__)

_QUEUE_BOUND = 1000
# How long a revocation may take on the agent (three calls to the CA, each bounded at 30 s).
REVOKE_TIMEOUT_SECONDS: Final = 100.0


class CertificateListener:
    """Takes ``certificate_report`` frames; a worker applies them in arrival order.

    Applying one may look a name up in DNS (to tell "DNS points elsewhere" from "port closed"),
    which must not hold up the link's read loop.
    """

    def __init__(self, resolver: Resolver, keyring: Keyring, registry: Registry) -> None:
        self._resolver = resolver
        self._keyring = keyring
        self._registry = registry
        # Links whose agent watches certificates (an HTTPS edge and a new enough agent).
        self._capable: set[AgentSession] = set()
        # Of those, the links whose agent renews a valid certificate when asked.
        self._renewing: set[AgentSession] = set()
        # And those whose agent revokes a certificate its edge obtained.
        self._revoking: set[AgentSession] = set()
        self._queue: asyncio.Queue[tuple[str, CertificateReport]] = asyncio.Queue(_QUEUE_BOUND)
        # Told (event type, attempt id) of each issue, renewal and failure a report caused.
        self.outcome_hooks: list[Callable[[str, str], Awaitable[None]]] = []

    @property
    def message_types(self) -> frozenset[str]:
        """Only the report."""
        return frozenset({"certificate_report"})

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Hand an edge that serves certificates the imported ones it must load."""
        if CERTIFICATES_CAPABILITY in hello.capabilities:
            self._capable.add(session)
            if CERTIFICATES_RENEW_CAPABILITY in hello.capabilities:
                self._renewing.add(session)
            if CERTIFICATES_REVOKE_CAPABILITY in hello.capabilities:
                self._revoking.add(session)
            await self._send_load(session)

    async def _send_load(self, session: AgentSession) -> None:
        served = await served_set(session.server_id, self._keyring)
        await session.send(CertificateLoad(id=UNSTAMPED, certificates=served))

    async def push(self, server_id: str | None) -> bool:
        """Send the server's imported certificates now; False when its agent is not online
        (it gets them when it connects)."""
        session = self._registry.get(server_id) if server_id else None
        if session is None or session not in self._capable:
            return False
        try:
            await self._send_load(session)
        except Unavailable:
            return False
        return True

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Queue the report (a full queue drops it: the next report carries the same state)."""
        if isinstance(message, CertificateReport) and not self._queue.full():
            self._queue.put_nowait((session.server_id, message))

    async def retry_now(
        self, server_id: str | None, domain_names: list[str], renew: bool = False
    ) -> None:
        """Ask the server's edge to try ``domain_names`` now, or with ``renew`` to renew their
        valid certificates now (``Unavailable`` when offline)."""
        session = self._registry.get(server_id) if server_id else None
        if session is None:
            raise Unavailable(
                "the server's agent is not connected: its edge retries on its own schedule",
                details={"serverId": server_id},
            )
        if session not in self._capable:
            raise Conflict(
                "the server's agent does not manage certificates: its edge serves no HTTPS "
                "(BERTH_AGENT_EDGE_TLS_LISTEN unset) or the agent predates certificates",
                details={"serverId": server_id},
            )
        if renew and session not in self._renewing:
            raise Conflict(
                "the server's agent predates early renewal: upgrade it, or let its edge renew "
                "the certificate by itself when it is due",
                details={"serverId": server_id},
            )
        await session.send(CertificateRetry(id=UNSTAMPED, domain_names=domain_names, renew=renew))

    async def revoke_at_ca(self, server_id: str | None, domain_name: str, fingerprint: str) -> None:
        """Have the server's agent revoke the certificate with ``fingerprint`` at its CA.

        ``Unavailable`` when the agent is offline, ``Conflict`` when it cannot revoke,
        ``RuntimeFailed`` with the agent's reason when the CA (or the edge) said no.
        """
        session = self._registry.get(server_id) if server_id else None
        if session is None:
            raise Unavailable(
                "the server's agent is not connected: it holds the certificate's key",
                details={"serverId": server_id},
            )
        if session not in self._revoking:
            raise Conflict(
                "the server's agent predates revocation: upgrade it first",
                details={"serverId": server_id},
            )
        reply = await session.request(
            lambda mid: CertificateRevoke(id=mid, domain_name=domain_name, fingerprint=fingerprint),
            REVOKE_TIMEOUT_SECONDS,
        )
        if not isinstance(reply, CertificateRevokeResult) or reply.status != "revoked":
            said = reply.message if isinstance(reply, CertificateRevokeResult) else "no answer"
            raise RuntimeFailed(f"not revoked: {said}", details={"domainName": domain_name})

    def on_disconnected(self, session: AgentSession) -> None:
        """Forget the link."""
        self._capable.discard(session)
        self._renewing.discard(session)
        self._revoking.discard(session)

    async def run(self) -> None:
        """Apply queued reports until cancelled."""
        while True:
            server_id, report = await self._queue.get()
            try:
                for outcome, attempt_id in await apply_report(server_id, report, self._resolver):
                    for hook in self.outcome_hooks:
                        await hook(outcome, attempt_id)
            except Exception:
                logger.exception("storing a certificate report from %s failed", server_id)


CERTIFICATES_KEY: Final = web.AppKey("certificates", CertificateListener)


async def _worker_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[CERTIFICATES_KEY].run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install(app: web.Application) -> None:
    """Register the report listener and its worker."""
    listener = CertificateListener(
        Resolver(app[SETTINGS_KEY].dns_resolver), app[KEYRING_KEY], app[REGISTRY_KEY]
    )
    app[CERTIFICATES_KEY] = listener
    app[REGISTRY_KEY].add_listener(listener)
    app.cleanup_ctx.append(_worker_ctx)
