"""The coordinator's DNS-01 loop: order what is due (requested, retrying or near expiry), store
the result like an imported certificate, and have every server of the organization load it."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.certificates.pem_checks import check
from coordinator.db.dns01_models import DnsProvider, WildcardCertificate, WildcardCertificateAttempt
from coordinator.dns01.acme_order import Issued, order
from coordinator.dns01.providers import target_of
from coordinator.dns01.rfc2136 import Dns01Failure
from coordinator.dns01.serving import account_binding, key_binding
from coordinator.dns01.wildcards import CHALLENGE_TYPE, PROVIDER_KEY, names_of
from coordinator.ids import new_id
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring
from shared.certificate_facts import observe
from shared.errors import InvalidRequest

logger = logging.getLogger(__name__)

# A retriable failure is tried again after this pause, doubling up to a day.
_FIRST_PAUSE: Final = timedelta(minutes=5)
_MAX_PAUSE: Final = timedelta(days=1)


@dataclass(frozen=True)
class IssuerConfig:
    """Where to order and how long each step may take."""

    directory: str
    ca_bundle: str | None
    email: str | None
    visible_within: float
    order_deadline: float = 120.0


Push = Callable[[str], Awaitable[None]]
"""Reloads the imported-certificate set of every connected server of an organization."""


def renews_at(not_before: datetime, not_after: datetime) -> datetime:
    """A third of the lifetime before expiry (as Caddy does for the certificates it manages)."""
    return not_after - (not_after - not_before) / 3


async def _failed_before(certificate_id: str) -> int:
    return await WildcardCertificateAttempt.filter(
        certificate_id=certificate_id, status="failed"
    ).count()


class Issuer:
    """Owns the loop; ``wake()`` makes it look for due certificates now."""

    def __init__(
        self, config: IssuerConfig, keyring: Keyring, guard: OutboundGuard, push: Push
    ) -> None:
        self._config = config
        self._keyring = keyring
        self._guard = guard
        self._push = push
        self._wake = asyncio.Event()
        # Told (event type, attempt id) of each order's outcome: issued, renewed or failed.
        self.outcome_hooks: list[Callable[[str, str], Awaitable[None]]] = []

    async def _told(self, outcome: str, attempt_id: str) -> None:
        for hook in self.outcome_hooks:
            await hook(outcome, attempt_id)

    def wake(self) -> None:
        """Look for due certificates now."""
        self._wake.set()

    async def run(self, interval: float) -> None:
        """Order what is due, then wait for a wake-up or ``interval``; until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                logger.exception("a DNS-01 round failed")
            # The pause is awaited before the wait coroutine exists: a cancel during its query
            # must not leave an un-awaited Event.wait behind (a warning at shutdown).
            pause = await self._pause(interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _pause(self, interval: float) -> float:
        """Until the next certificate is due (a retry's ``retryAfter``), at most ``interval``."""
        try:
            soonest = (
                await WildcardCertificate.filter(next_attempt_at__isnull=False)
                .order_by("next_attempt_at")
                .first()
            )
        except Exception:
            logger.exception("reading the next due wildcard certificate failed")
            return interval
        if soonest is None or soonest.next_attempt_at is None:
            return interval
        wait = (soonest.next_attempt_at - datetime.now(UTC)).total_seconds()
        # At least a second: a row whose failure could not be stored stays due, and must not
        # make the loop spin.
        return min(interval, max(wait, 1.0))

    async def run_due(self) -> None:
        """Order every certificate due now, one after another."""
        now = datetime.now(UTC)
        due = await WildcardCertificate.filter(next_attempt_at__lte=now).order_by("id")
        for row in due:
            try:
                await self._run_one(row)
            except Exception as exc:
                # One certificate's unexpected failure (a database error, an unreadable stored
                # key) must not hold up the others, nor leave its attempt open for ever.
                logger.exception("ordering %s failed unexpectedly", row.domain_name)
                await self._failed(
                    row,
                    await self._attempt(row),
                    Dns01Failure("order", "dns01_internal_error", str(exc)[:500], True),
                )

    async def _attempt(self, row: WildcardCertificate) -> WildcardCertificateAttempt:
        open_ = (
            await WildcardCertificateAttempt.filter(certificate_id=row.id, status="requested")
            .order_by("-id")
            .first()
        )
        if open_ is not None:
            return open_
        return await WildcardCertificateAttempt.create(
            id=new_id("wca"),
            certificate_id=row.id,
            status="requested",
            reason="renew" if row.fingerprint else "retry",
            provider_key=PROVIDER_KEY,
            challenge_type=CHALLENGE_TYPE,
            requested_at=datetime.now(UTC),
        )

    async def _order(self, row: WildcardCertificate) -> Issued:
        provider = await DnsProvider.get_or_none(id=row.dns_provider_id)
        if provider is None:
            raise Dns01Failure("dns", "dns_provider_missing", "the DNS provider is gone", False)
        target = await target_of(provider, self._keyring, self._guard)
        account = (
            self._keyring.decrypt(row.account_key_encrypted, account_binding(row.id))
            if row.account_key_encrypted
            else None
        )
        config = self._config
        # The order blocks (requests, DNS over TCP), each step bounded by its own timeout; the
        # wait_for bounds the whole, and a cancelled loop stops waiting for the thread.
        return await asyncio.wait_for(
            asyncio.to_thread(
                order,
                directory_url=row.acme_directory,
                ca_bundle=config.ca_bundle,
                email=config.email,
                account_key_pem=account,
                names=names_of(row.domain_name),
                target=target,
                visible_within=config.visible_within,
                deadline_seconds=config.order_deadline,
            ),
            config.visible_within + 2 * config.order_deadline,
        )

    async def _run_one(self, row: WildcardCertificate) -> None:
        attempt = await self._attempt(row)
        try:
            issued = await self._order(row)
            facts = check(issued.certificate_chain, issued.private_key, row.domain_name)
        except Dns01Failure as failure:
            await self._failed(row, attempt, failure)
            return
        except InvalidRequest as exc:
            await self._failed(
                row,
                attempt,
                Dns01Failure("order", "acme_certificate_unusable", exc.message, False),
            )
            return
        except TimeoutError:
            await self._failed(
                row,
                attempt,
                Dns01Failure("order", "acme_order_timeout", "the order did not finish", True),
            )
            return
        await self._issued(row, attempt, issued, facts.fingerprint)
        await self._push(row.organization_id)
        await self._told(
            "certificate.renewed" if row.fingerprint else "certificate.issued", attempt.id
        )

    async def _issued(
        self,
        row: WildcardCertificate,
        attempt: WildcardCertificateAttempt,
        issued: Issued,
        fingerprint: str,
    ) -> None:
        leaf = x509.load_pem_x509_certificates(issued.certificate_chain.encode())[0]
        seen = observe(row.domain_name, leaf, source="imported")
        now = datetime.now(UTC)
        async with in_transaction():
            await WildcardCertificate.filter(id=row.id).update(
                status="active",
                issuer=seen.issuer,
                subject_alternative_names=seen.subject_alternative_names,
                not_before=seen.not_before,
                not_after=seen.not_after,
                issued_at=now,
                fingerprint=fingerprint,
                key_algorithm=seen.key_algorithm,
                certificate_chain=issued.certificate_chain,
                private_key_encrypted=self._keyring.encrypt(
                    issued.private_key, key_binding(row.id)
                ),
                account_key_encrypted=self._keyring.encrypt(
                    issued.account_key, account_binding(row.id)
                ),
                next_attempt_at=renews_at(seen.not_before, seen.not_after),
            )
            await WildcardCertificateAttempt.filter(id=attempt.id).update(
                status="issued",
                issued_at=now,
                expires_at=seen.not_after,
                fingerprint=fingerprint,
            )
            await audit.record(
                actor=None,
                actor_kind="system",
                organization_id=row.organization_id,
                event_type="wildcard-certificate.issued",
                aggregate_type="wildcard-certificate",
                aggregate_id=row.id,
                payload={
                    "domainName": row.domain_name,
                    "fingerprint": fingerprint,
                    "notAfter": seen.not_after.isoformat(),
                    "attemptId": attempt.id,
                },
            )

    async def _failed(
        self,
        row: WildcardCertificate,
        attempt: WildcardCertificateAttempt,
        failure: Dns01Failure,
    ) -> None:
        now = datetime.now(UTC)
        retry_after: datetime | None = None
        if failure.retriable:
            pause = min(_FIRST_PAUSE * 2 ** await _failed_before(row.id), _MAX_PAUSE)
            retry_after = now + pause
        logger.warning("DNS-01 order for %s failed: %s", row.domain_name, failure)
        async with in_transaction():
            await WildcardCertificateAttempt.filter(id=attempt.id).update(
                status="failed",
                failed_at=now,
                error_code=failure.error_code,
                failure_phase=failure.failure_phase,
                failure_message=failure.failure_message[:2000],
                failure_details=failure.details,
                retriable=failure.retriable,
                retry_after=retry_after,
            )
            # A valid certificate stays active (and served) while its renewal fails.
            await WildcardCertificate.filter(id=row.id).update(
                status="active" if row.fingerprint else "failed", next_attempt_at=retry_after
            )
            await audit.record(
                actor=None,
                actor_kind="system",
                organization_id=row.organization_id,
                event_type="wildcard-certificate.failed",
                aggregate_type="wildcard-certificate",
                aggregate_id=row.id,
                payload={
                    "domainName": row.domain_name,
                    "errorCode": failure.error_code,
                    "attemptId": attempt.id,
                },
            )
        await self._told("certificate.failed", attempt.id)
