"""The agent feature: watch Caddy's storage and ACME log lines, report changes on the link."""

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Literal

from agent.certificates import imported
from agent.certificates.caddy_logs import CaddyAdmin, LogReceiver
from agent.certificates.diagnostics import FailureTracker
from agent.certificates.renewal import ForcedRenewals
from agent.certificates.revocation import RevocationFailed, find_stored, revoke
from agent.certificates.storage import read_storage
from agent.edge_tls import EdgeTls
from agent.features import LinkContext
from shared.errors import PlatformError
from shared.messages import UNSTAMPED
from shared.messages.certificates import (
    CERTIFICATES_CAPABILITY,
    CERTIFICATES_COORDINATOR_TYPES,
    CERTIFICATES_RENEW_CAPABILITY,
    CERTIFICATES_REVOKE_CAPABILITY,
    CertificateLoad,
    CertificateReport,
    CertificateRetry,
    CertificateRevoke,
    CertificateRevokeResult,
    ImportedCertificate,
)

logger = logging.getLogger(__name__)


class CertificateFeature:
    """Sends a ``certificate_report`` on each link and whenever the picture changes.

    Changes are noticed from Caddy's log lines (an order obtained or failed) and from a scan of
    the storage every ``scan_seconds`` (renewals by another process, a restored backup).
    """

    def __init__(
        self, admin_url: str, data_dir: Path, scan_seconds: float, tls: EdgeTls | None = None
    ) -> None:
        self._admin = CaddyAdmin(admin_url)
        # The ACME directory (and its HTTPS roots) a revocation goes to.
        self._tls = tls if tls is not None else EdgeTls("")
        self._revocations: set[asyncio.Task[None]] = set()
        self._fallback_root = data_dir
        self._scan_seconds = scan_seconds
        self._tracker = FailureTracker()
        self._receiver = LogReceiver(self._on_entry)
        self._changed = asyncio.Event()
        self._link: LinkContext | None = None
        self._last_sent: CertificateReport | None = None
        # The imported set the coordinator wants served (None: not told yet this run).
        self._imported: list[ImportedCertificate] | None = None
        self._retry_wanted = False
        self._renewals = ForcedRenewals()

    @property
    def message_types(self) -> frozenset[str]:
        """The imported certificates to serve."""
        return CERTIFICATES_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """Advertised in hello."""
        return [
            CERTIFICATES_CAPABILITY,
            CERTIFICATES_RENEW_CAPABILITY,
            CERTIFICATES_REVOKE_CAPABILITY,
        ]

    def _on_entry(self, entry: dict[str, Any]) -> None:
        if self._tracker.feed(entry):
            self._changed.set()

    async def _root(self) -> Path:
        try:
            configured = await self._admin.storage_root()
        except (OSError, TimeoutError, ValueError) as exc:
            logger.debug("reading Caddy's storage setting failed: %s", exc)
            configured = None
        return Path(configured) if configured else self._fallback_root

    async def _report(self) -> CertificateReport:
        root = await self._root()
        found = await asyncio.to_thread(read_storage, root)
        found.extend(imported.facts(self._imported or []))
        return CertificateReport(
            id=UNSTAMPED, certificates=found, failures=self._tracker.all_failures()
        )

    async def _keep_log_pointed(self) -> None:
        try:
            await self._admin.ensure_log(self._receiver.port)
        except (OSError, TimeoutError, ValueError) as exc:
            # Caddy may not be up yet: the next round tries again.
            logger.info("cannot point Caddy's certificate log at the agent yet: %s", exc)

    async def _keep_imported_loaded(self) -> None:
        if self._imported is None:
            return
        try:
            await imported.load(self._admin, self._imported)
        except (OSError, TimeoutError, ValueError) as exc:
            logger.warning("Caddy did not take the imported certificates: %s", exc)

    async def _retry_if_wanted(self) -> None:
        if not self._retry_wanted:
            return
        self._retry_wanted = False
        try:
            await self._admin.restart_management()
        except (OSError, TimeoutError, ValueError) as exc:
            logger.warning("could not make Caddy retry its certificate orders: %s", exc)

    async def _renew_if_wanted(self) -> None:
        if not self._renewals.busy:
            return
        stored = await asyncio.to_thread(read_storage, await self._root())
        try:
            await self._renewals.step(self._admin, {c.domain_name: c for c in stored})
        except (OSError, TimeoutError, ValueError) as exc:
            logger.warning("could not make Caddy renew early: %s", exc)

    async def _round(self) -> None:
        await self._keep_log_pointed()
        await self._keep_imported_loaded()
        await self._retry_if_wanted()
        await self._renew_if_wanted()
        # While a renewal runs, look often: its policy comes out as soon as it is stored.
        wait = min(self._scan_seconds, 1.0) if self._renewals.busy else self._scan_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), wait)
        self._changed.clear()
        await self._send_if_changed()

    async def run(self) -> None:
        """Listen for Caddy's log lines; rescan and report on change or every scan period."""
        await self._receiver.start()
        try:
            while True:
                try:
                    await self._round()
                except Exception:
                    # One bad round (Caddy answering nonsense, an unreadable file) must not end
                    # the feature, and with it the daemon: the next round starts afresh.
                    logger.exception("certificate watch round failed")
        finally:
            for task in list(self._revocations):
                task.cancel()
            await asyncio.gather(*self._revocations, return_exceptions=True)
            await self._receiver.close()

    async def _send_if_changed(self, force: bool = False) -> None:
        link = self._link
        if link is None:
            return
        report = await self._report()
        if not force and self._last_sent == report:
            return
        try:
            await link.send(report)
        except Exception as exc:
            # The link closed meanwhile: the next link gets the whole picture on attach.
            logger.info("certificate report not sent: %s", exc)
            return
        self._last_sent = report

    async def attached(self, link: LinkContext) -> None:
        """A new link: send the whole picture at once."""
        self._link = link
        await self._send_if_changed(force=True)

    def detached(self, link: LinkContext) -> None:
        """The link is gone."""
        if self._link is link:
            self._link = None

    def receive(self, message: Any, link: LinkContext) -> None:
        """A new imported set: the run loop loads it into Caddy at once."""
        if isinstance(message, CertificateLoad):
            self._imported = list(message.certificates)
            self._changed.set()
        elif isinstance(message, CertificateRevoke):
            task = asyncio.get_running_loop().create_task(self._revoke(message, link))
            self._revocations.add(task)
            task.add_done_callback(self._revocations.discard)
        elif isinstance(message, CertificateRetry) and message.renew:
            self._renewals.want(message.domain_names)
            self._changed.set()
        elif isinstance(message, CertificateRetry):
            self._retry_wanted = True
            self._changed.set()

    async def _revoke(self, message: CertificateRevoke, link: LinkContext) -> None:
        """Revoke the stored certificate the coordinator named, and answer how it went."""
        root = await self._root()
        stored = await asyncio.to_thread(
            find_stored, root, message.domain_name, message.fingerprint
        )
        status: Literal["revoked", "failed"] = "failed"
        if stored is None:
            said = "the edge holds no such certificate for the name (renewed or removed since)"
        else:
            try:
                await revoke(self._tls.directory, self._tls.trusted_roots, stored)
                status, said = "revoked", ""
            except RevocationFailed as exc:
                said = str(exc)
        if status == "failed":
            logger.warning("revoking %s failed: %s", message.domain_name, said)
        reply = CertificateRevokeResult(id=UNSTAMPED, re=message.id, status=status, message=said)
        try:
            await link.send(reply)
        except Exception as exc:  # the link closed: the coordinator timed the request out
            logger.info("revocation result not sent: %s", exc)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """A refused report is resent with the next change."""
        return False
