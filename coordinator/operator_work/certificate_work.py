"""Certificate attempts as operator work (kind ``certificate``): every issue, renewal and retry
attempt of a managed (ACME, edge-issued) certificate with its error code and failure phase.

A failed, retriable latest attempt can be retried (the certificate command: the server's edge
is asked to try now); nothing else can be done from here: Caddy orders and renews by itself, so
an attempt is not canceled, and its outcome is what the edge reports (no dead-letter or
mark-recovered). Attempts are the certificate's history (``GET /certificates``): not pruned here.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from coordinator.auth import Principal
from coordinator.certificates import CERTIFICATES_KEY, commands
from coordinator.certificates.reads import get_certificate
from coordinator.db.certificate_models import AttemptRecord, Certificate, CertificateAttempt
from coordinator.domains import bindings
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from shared.errors import Conflict, NotFound

_STATUS: Final[dict[str, WorkStatus]] = {
    "requested": "pending",
    "issued": "succeeded",
    "failed": "failed",
}
A = TypeVar("A", bound=AttemptRecord)
C = TypeVar("C")
# The edge's own back-off: a retriable failure it will try again on its own.
_EDGE_RETRIES: Final = "retry-scheduled"


def attempt_item(
    row: AttemptRecord, domain_name: str, refs: dict[str, str | None], latest: bool
) -> WorkItem:
    """An attempt in the ledger's shape (``latest``: its certificate's newest attempt)."""
    status = _STATUS.get(row.status, "unknown")
    waiting = row.retry_after is not None and row.retry_after > datetime.now(UTC)
    if status == "failed" and latest and row.retriable and waiting:
        status = _EDGE_RETRIES
    details = {"domainName": domain_name, "reason": row.reason, "attemptStatus": row.status}
    for name, value in (
        ("challengeType", row.challenge_type),
        ("failurePhase", row.failure_phase),
        ("failureMessage", row.failure_message),
        ("retryAfter", row.retry_after.isoformat() if row.retry_after else None),
        ("fingerprint", row.fingerprint),
        ("expiresAt", row.expires_at.isoformat() if row.expires_at else None),
    ):
        if value is not None:
            details[name] = str(value)[:500]
    failed = row.status == "failed"
    retriable = bool(failed and latest and row.retriable is not False)
    return WorkItem(
        id=row.id,
        kind="certificate",
        status=status,
        operation_key=f"certificate.{row.reason}",
        phase=row.failure_phase or ("issued" if row.status == "issued" else "ordering"),
        step=row.status,
        started_at=row.requested_at,
        updated_at=row.failed_at or row.issued_at or row.requested_at,
        finished_at=row.failed_at or row.issued_at,
        error_code=row.error_code,
        error_category=(row.failure_phase or "certificate") if failed else None,
        retriable=retriable,
        next_actions=["retry"] if retriable else [],
        safe_details=details,
        refs=refs,
    )


def newest_items(
    rows: Iterable[A],
    by_id: Mapping[str, C],
    entry: Callable[[A, C, bool], WorkItem],
    filters: WorkFilters,
) -> list[WorkItem]:
    """Attempts (newest first) as ledger items, each told whether it is its certificate's
    latest, kept if they match the status filter, at most ``filters.limit``."""
    seen: set[str] = set()
    found: list[WorkItem] = []
    for row in rows:
        certificate_id = row.certificate_id  # type: ignore[attr-defined]
        shown = entry(row, by_id[certificate_id], certificate_id not in seen)
        seen.add(certificate_id)
        if filters.status and shown.status != filters.status:
            continue
        found.append(shown)
        if len(found) == filters.limit:
            break
    return found


def item(row: CertificateAttempt, cert: Certificate, binding: Any, latest: bool) -> WorkItem:
    """A managed certificate's attempt in the ledger's shape."""
    refs: dict[str, str | None] = {
        "projectId": binding.project_id,
        "resourceId": binding.resource_id,
        "serverId": cert.server_id,
        "domainBindingId": binding.id,
        "certificateId": cert.id,
    }
    return attempt_item(row, cert.domain_name, refs, latest)


class CertificateWork:
    """The ledger's view of managed certificates' attempts."""

    kind: WorkKind = "certificate"
    prefix = "cat"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest attempts of certificates whose bindings the caller may see."""
        if filters.deployment_id:
            return []
        visible = bindings.visible(actor)
        if filters.resource_id:
            visible = visible.filter(resource_id=filters.resource_id)
        shown = {b.id: b for b in await visible.limit(5000)}
        certs = Certificate.filter(domain_binding_id__in=list(shown), source="managed")
        if filters.server_id:
            certs = certs.filter(server_id=filters.server_id)
        by_id = {c.id: c for c in await certs}
        rows = await CertificateAttempt.filter(certificate_id__in=list(by_id)).order_by("-id")

        def entry(row: CertificateAttempt, cert: Certificate, latest: bool) -> WorkItem:
            return item(row, cert, shown[cert.domain_binding_id], latest)  # type: ignore[attr-defined]

        return newest_items(rows, by_id, entry, filters)

    async def _attempt(
        self, actor: Principal, work_id: str
    ) -> tuple[CertificateAttempt, Certificate]:
        row = await CertificateAttempt.get_or_none(id=work_id)
        if row is None:
            raise NotFound(f"operator work {work_id!r} not found")
        try:
            cert = await get_certificate(actor, row.certificate_id)  # type: ignore[attr-defined]
        except NotFound:
            raise NotFound(f"operator work {work_id!r} not found") from None
        return row, cert

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One attempt the caller may see, else 404."""
        row, cert = await self._attempt(actor, work_id)
        binding = await bindings.get_binding(actor, cert.domain_binding_id)  # type: ignore[attr-defined]
        newest = await CertificateAttempt.filter(certificate_id=cert.id).order_by("-id").first()
        return item(row, cert, binding, newest is not None and newest.id == row.id)

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Refused: the edge orders and backs off by itself."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "a certificate attempt cannot be canceled: the server's edge (Caddy) orders and "
            "retries by itself; change the domain binding's tlsMode to stop ordering",
            details={"kind": self.kind},
        )

    async def retry(self, call: Any, work_id: str) -> str:
        """The certificate's retry command (needs ``certificates:write``): the new attempt's id."""
        call.actor.require("certificates:write")
        row, cert = await self._attempt(call.actor, work_id)
        newest = await CertificateAttempt.filter(certificate_id=cert.id).order_by("-id").first()
        if newest is None or newest.id != row.id:
            raise Conflict(
                "only the certificate's latest attempt can be retried",
                details={"latestAttemptId": newest.id if newest else None},
            )
        _, attempt_id = await commands.retry(
            call.actor, call.request_id, cert.id, call.request.app[CERTIFICATES_KEY].retry_now
        )
        return attempt_id

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Refused: an attempt's outcome is what the edge reports."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "certificate attempts are not dead-lettered: the edge keeps its own back-off; "
            "retry the attempt or fix its cause (errorCode, failurePhase)",
            details={"kind": self.kind},
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Refused: only an issued certificate the edge reports makes an attempt succeed."""
        _ = await self._attempt(call.actor, work_id)
        raise Conflict(
            "a certificate attempt cannot be marked recovered: it succeeds when the edge "
            "reports the issued certificate",
            details={"kind": self.kind},
        )

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Nothing: attempts are the certificate's history (shown with it)."""
        return {}
