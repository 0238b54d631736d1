"""Backups, restores and backup verifications as operator work (Berth's own kinds ``backup``,
``restore``, ``backup-verification``: the reference's ledger has no backups).

One backup row carries three jobs: the backup itself (work id = the backup id, ``dbk_``), its
latest restore (the restore attempt id, ``rsa_``) and its latest verification (``vrf_`` + the
backup id). A failed backup or verification can be retried (a new backup of the same database;
the verification again); a restore is not retried from here, because it overwrites data and
needs its explicit acknowledgement (``POST .../restore`` with ``acknowledgeDataOverwrite``).
Transfers cannot be canceled, and an outcome is the transfer's own: no dead-letter or
mark-recovered. Backups are removed by their policy's retention, not pruned here.
"""

import abc
from datetime import datetime
from typing import Any, Final

from coordinator.auth import Principal
from coordinator.backups import RUNNER_KEY, service
from coordinator.db.backup_models import DependencyBackup
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from shared.errors import Conflict, NotFound

_STATUS: Final[dict[str, WorkStatus]] = {
    "pending": "pending",
    "ready": "succeeded",
    "passed": "succeeded",
    "failed": "failed",
}
VERIFICATION_PREFIX: Final = "vrf"
_INFRASTRUCTURE: Final = frozenset({"unavailable", "interrupted", "timeout"})


def _category(code: str | None) -> str | None:
    if code is None:
        return None
    return "infrastructure" if code.split(":", 1)[0] in _INFRASTRUCTURE else "runtime"


def _refs(row: DependencyBackup) -> dict[str, str | None]:
    return {"projectId": row.project_id, "serverId": row.server_id}


def _details(row: DependencyBackup, **extra: object) -> dict[str, str]:
    details = {
        "backupId": row.id,
        "dependencyResourceId": row.dependency_resource_id,
        "dependencyKind": row.dependency_kind,
        "target": row.target,
    }
    details.update({k: str(v)[:500] for k, v in extra.items() if v is not None})
    return details


def backup_item(row: DependencyBackup) -> WorkItem:
    """The backup job of ``row``."""
    status = _STATUS.get(row.status, "unknown")
    failed = status == "failed"
    return WorkItem(
        id=row.id,
        kind="backup",
        status=status,
        operation_key=f"backup.{row.dependency_kind}",
        phase="transfer" if status == "pending" else "finished",
        step=row.status,
        started_at=row.requested_at,
        updated_at=row.failed_at or row.completed_at or row.requested_at,
        finished_at=row.failed_at or row.completed_at,
        error_code=row.failure_code,
        error_category=_category(row.failure_code) if failed else None,
        retriable=failed,
        next_actions=["retry"] if failed else [],
        safe_details=_details(
            row, failureMessage=row.failure_message, sizeBytes=row.size_bytes, sha256=row.sha256
        ),
        refs=_refs(row),
    )


def restore_item(row: DependencyBackup) -> WorkItem:
    """The latest restore of ``row`` (which has one)."""
    status = _STATUS.get(row.restore_status or "", "unknown")
    return WorkItem(
        id=str(row.restore_attempt_id),
        kind="restore",
        status=status,
        operation_key=f"restore.{row.dependency_kind}",
        phase="transfer" if status == "pending" else "finished",
        step=row.restore_status,
        started_at=row.restore_requested_at,
        updated_at=row.restore_failed_at
        or row.restore_completed_at
        or row.restore_requested_at
        or row.created_at,
        finished_at=row.restore_failed_at or row.restore_completed_at,
        error_code=row.restore_failure_code,
        error_category=_category(row.restore_failure_code) if status == "failed" else None,
        retriable=False,
        next_actions=[],
        safe_details=_details(row, failureMessage=row.restore_failure_message),
        refs=_refs(row),
    )


def verification_item(row: DependencyBackup) -> WorkItem:
    """The latest verification of ``row`` (which has one)."""
    status = _STATUS.get(row.verification_status or "", "unknown")
    failed = status == "failed"
    message = row.verification_message or ""
    code = message.split(":", 1)[0] if failed and ":" in message else None
    return WorkItem(
        id=f"{VERIFICATION_PREFIX}_{row.id}",
        kind="backup-verification",
        status=status,
        operation_key=f"backup-verification.{row.dependency_kind}",
        phase="restore-check" if status == "pending" else "finished",
        step=row.verification_status,
        started_at=row.verification_requested_at,
        updated_at=row.verified_at or row.verification_requested_at or row.created_at,
        finished_at=row.verified_at if status != "pending" else None,
        error_code=(code or "verification-failed") if failed else None,
        error_category=_category(code) if failed else None,
        retriable=failed,
        next_actions=["retry"] if failed else [],
        safe_details=_details(
            row,
            verificationMessage=row.verification_message,
            tables=row.verification_tables,
            rows=row.verification_rows,
        ),
        refs=_refs(row),
    )


class _BackupJobs(abc.ABC):
    """What the three kinds share: scoped lookups, the filters, the refusals."""

    kind: WorkKind
    prefix: str
    noun: str

    @abc.abstractmethod
    def _item(self, row: DependencyBackup) -> WorkItem:
        """The ledger item of ``row`` as this kind shows it."""

    def _query(self, actor: Principal) -> Any:
        return service.visible(actor)

    async def _row(self, actor: Principal, work_id: str) -> DependencyBackup:
        row = await self._query(actor).filter(**self._lookup(work_id)).first()
        if row is None:
            raise NotFound(f"operator work {work_id!r} not found")
        return row  # type: ignore[no-any-return]

    def _lookup(self, work_id: str) -> dict[str, str]:
        return {"id": work_id}

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest jobs the caller may see (none match a resource or deployment filter)."""
        if filters.resource_id or filters.deployment_id:
            return []
        query = self._query(actor)
        if filters.server_id:
            query = query.filter(server_id=filters.server_id)
        found: list[WorkItem] = []
        for row in await query.order_by("-created_at").limit(filters.limit * 5):
            shown = self._item(row)
            if filters.status and shown.status != filters.status:
                continue
            found.append(shown)
            if len(found) == filters.limit:
                break
        return found

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One job the caller may see, else 404."""
        return self._item(await self._row(actor, work_id))

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Refused: a transfer runs to its end (or fails when its agent link is lost)."""
        _ = await self._row(call.actor, work_id)
        raise Conflict(
            f"a {self.noun} cannot be canceled: the transfer ends by itself, and fails when the "
            "agent's link is lost",
            details={"kind": self.kind},
        )

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Refused: a failed job stays failed in its backup's history."""
        _ = await self._row(call.actor, work_id)
        raise Conflict(
            f"a {self.noun} is not dead-lettered: a failed one stays failed in the backup's "
            "history",
            details={"kind": self.kind},
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Refused: only a completed transfer succeeds."""
        _ = await self._row(call.actor, work_id)
        raise Conflict(
            f"a {self.noun} cannot be marked recovered: retry it instead",
            details={"kind": self.kind},
        )

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Nothing: backups are removed by their policy's retention."""
        return {}


class BackupWork(_BackupJobs):
    """Backups; retry takes a new backup of the same database."""

    kind: WorkKind = "backup"
    prefix = "dbk"
    noun = "backup"

    def _item(self, row: DependencyBackup) -> WorkItem:
        return backup_item(row)

    async def retry(self, call: Any, work_id: str) -> str:
        """A new backup of the failed backup's database (needs ``dependency-resources:write``)."""
        call.actor.require("dependency-resources:write")
        row = await self._row(call.actor, work_id)
        if row.status != "failed":
            raise Conflict(
                f"only a failed backup can be retried (this one is {row.status})",
                details={"status": row.status},
            )
        return await service.create(
            call.actor, call.request_id, row.dependency_resource_id, call.request.app[RUNNER_KEY]
        )


class RestoreWork(_BackupJobs):
    """The latest restore of each backup; never retried from the ledger."""

    kind: WorkKind = "restore"
    prefix = "rsa"
    noun = "restore"

    def _item(self, row: DependencyBackup) -> WorkItem:
        return restore_item(row)

    def _query(self, actor: Principal) -> Any:
        return service.visible(actor).filter(restore_attempt_id__isnull=False)

    def _lookup(self, work_id: str) -> dict[str, str]:
        return {"restore_attempt_id": work_id}

    async def retry(self, call: Any, work_id: str) -> str:
        """Refused: a restore overwrites data and needs its explicit acknowledgement."""
        row = await self._row(call.actor, work_id)
        raise Conflict(
            "a restore is not retried from the ledger: it replaces the database's data, so ask "
            f"for it again with POST /dependency-resources/backups/{row.id}/restore and "
            "acknowledgeDataOverwrite",
            details={"kind": self.kind, "backupId": row.id},
        )


class VerificationWork(_BackupJobs):
    """The latest verification of each backup; retry verifies again."""

    kind: WorkKind = "backup-verification"
    prefix = VERIFICATION_PREFIX
    noun = "backup verification"

    def _item(self, row: DependencyBackup) -> WorkItem:
        return verification_item(row)

    def _query(self, actor: Principal) -> Any:
        return service.visible(actor).filter(verification_status__isnull=False)

    def _lookup(self, work_id: str) -> dict[str, str]:
        return {"id": work_id.removeprefix(f"{VERIFICATION_PREFIX}_")}

    async def retry(self, call: Any, work_id: str) -> str:
        """Verify the backup again (needs ``dependency-resources:write``); same work id."""
        call.actor.require("dependency-resources:write")
        row = await self._row(call.actor, work_id)
        if row.verification_status != "failed":
            raise Conflict(
                f"only a failed verification can be retried (this one is "
                f"{row.verification_status})",
                details={"status": row.verification_status},
            )
        backup_id = await service.verify(
            call.actor, call.request_id, row.id, call.request.app[RUNNER_KEY]
        )
        return f"{VERIFICATION_PREFIX}_{backup_id}"
