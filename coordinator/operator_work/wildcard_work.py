"""DNS-01 (wildcard) orders as operator work (kind ``certificate``, ids ``wca_``): every issue,
renewal and retry attempt the coordinator's DNS-01 loop made, with its error code and phase.

A failed latest attempt can be retried (the wildcard retry command: the loop orders now); the
loop backs off by itself, so an attempt is not canceled, and its outcome is the CA's (no
dead-letter or mark-recovered). Attempts are the certificate's history: not pruned here.
"""

from datetime import datetime
from typing import Any

from coordinator.auth import Principal
from coordinator.db.dns01_models import WildcardCertificate, WildcardCertificateAttempt
from coordinator.dns01 import wildcards
from coordinator.dns01.plugin import ISSUER_KEY
from coordinator.operator_work.certificate_work import attempt_item, newest_items
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind
from shared.errors import Conflict, NotFound


def _item(row: WildcardCertificateAttempt, cert: WildcardCertificate, latest: bool) -> WorkItem:
    refs: dict[str, str | None] = {"certificateId": cert.id}
    return attempt_item(row, f"*.{cert.domain_name}", refs, latest)


class WildcardWork:
    """The ledger's view of DNS-01 orders."""

    kind: WorkKind = "certificate"
    prefix = "wca"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest attempts of the organization's wildcards (none match resource, server or
        deployment filters: a wildcard belongs to the organization)."""
        if filters.resource_id or filters.deployment_id or filters.server_id:
            return []
        by_id = {c.id: c for c in await wildcards.listed(actor)}
        rows = await WildcardCertificateAttempt.filter(certificate_id__in=list(by_id)).order_by(
            "-id"
        )
        return newest_items(rows, by_id, _item, filters)

    async def _attempt(
        self, actor: Principal, work_id: str
    ) -> tuple[WildcardCertificateAttempt, WildcardCertificate, bool]:
        row = await WildcardCertificateAttempt.get_or_none(id=work_id)
        if row is None:
            raise NotFound(f"operator work {work_id!r} not found")
        try:
            cert = await wildcards.get_wildcard(actor, row.certificate_id)  # type: ignore[attr-defined]
        except NotFound:
            raise NotFound(f"operator work {work_id!r} not found") from None
        newest = (
            await WildcardCertificateAttempt.filter(certificate_id=cert.id).order_by("-id").first()
        )
        return row, cert, newest is not None and newest.id == row.id

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One attempt the caller may see, else 404."""
        return _item(*await self._attempt(actor, work_id))

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Refused: the loop orders and backs off by itself."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "a DNS-01 order cannot be canceled: delete the wildcard certificate to stop ordering",
            details={"kind": self.kind},
        )

    async def retry(self, call: Any, work_id: str) -> str:
        """Order again now (needs ``certificates:write``); the new attempt's id."""
        call.actor.require("certificates:write")
        row, cert, latest = await self._attempt(call.actor, work_id)
        if row.status != "failed" or not latest:
            raise Conflict(
                "only the latest attempt, when it failed, is retried from the ledger (POST "
                "/wildcard-certificates/{id}/retries renews early)",
                details={"status": row.status, "latest": latest},
            )
        _, attempt_id = await wildcards.retry(call.actor, call.request_id, cert.id)
        call.request.app[ISSUER_KEY].wake()
        return attempt_id

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Refused: the outcome is the CA's."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "DNS-01 attempts are not dead-lettered: retry the attempt or fix its cause",
            details={"kind": self.kind},
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Refused: only an issued certificate makes an attempt succeed."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "a DNS-01 attempt cannot be marked recovered: retry it instead",
            details={"kind": self.kind},
        )

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Nothing: attempts are the certificate's history."""
        return {}
