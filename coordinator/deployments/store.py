"""Durable deployment state: status values, gap-free timeline events, agent log lines, masking.

Every write here is a database write first and an in-process notification second, so a reader
that missed a notification still finds everything in the database (the source of truth).
"""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator.db import models
from coordinator.deployments.stream import Notifier
from coordinator.secrets import MASK, Keyring
from shared.messages import DeployLogLine

DeploymentStatus = Literal[
    "created",
    "planning",
    "planned",
    "running",
    "cancel-requested",
    "succeeded",
    "failed",
    "canceled",
    "rolled-back",
]
# In the Literal's order (filters and counts list them so).
STATUSES: Final[tuple[DeploymentStatus, ...]] = get_args(DeploymentStatus)
TERMINAL: Final = frozenset({"succeeded", "failed", "canceled", "rolled-back"})
ACTIVE: Final = frozenset(s for s in STATUSES if s not in TERMINAL)

logger = logging.getLogger(__name__)

OutcomeHook = Callable[[str, str], Awaitable[None]]
"""Told ``(deployment_id, status)`` after a deployment moved to a terminal status."""

# Secret values shorter than this are not searched for in log text: masking "a" or "1" would
# shred every line while protecting nothing.
_MIN_MASKED_LENGTH: Final = 3


def snapshot_binding(deployment_id: str, key: str, exposure: str) -> str:
    """Associated data tying a snapshot ciphertext to one deployment's variable."""
    return f"deployment-snapshot:{deployment_id}:{key}:{exposure}"


def public_snapshot(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The snapshot as every read shows it: secrets ``****``, ciphertexts dropped."""
    if snapshot is None:
        return None
    shown = {k: v for k, v in snapshot.items() if k not in ("variables", "sealedFor")}
    rows: list[dict[str, Any]] = []
    for stored in snapshot.get("variables", []):
        row = {k: v for k, v in stored.items() if k != "sealed"}
        if row.get("isSecret"):
            row["value"] = MASK
        rows.append(row)
    shown["variables"] = rows
    return shown


def reveal_snapshot(
    keyring: Keyring, deployment_id: str, snapshot: dict[str, Any]
) -> list[dict[str, Any]]:
    """The snapshot's variables with secret values decrypted (for the plan sent to the agent)."""
    # A rollback reuses its candidate's snapshot as is; the ciphertexts stay bound to the
    # deployment that sealed them.
    sealed_for = str(snapshot.get("sealedFor") or deployment_id)
    revealed: list[dict[str, Any]] = []
    for row in snapshot.get("variables", []):
        value = row.get("value", "")
        if row.get("isSecret"):
            value = keyring.decrypt(
                str(row["sealed"]), snapshot_binding(sealed_for, row["key"], row["exposure"])
            )
        revealed.append({**row, "value": value})
    return revealed


class Masker:
    """Replaces known secret values with ``****`` in free text (longest values first)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_MASKED_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def mask(self, text: str) -> tuple[str, bool]:
        """Return ``text`` with secrets masked, and whether anything was replaced."""
        if self._pattern is None:
            return text, False
        masked, count = self._pattern.subn(MASK, text)
        return masked, count > 0


@dataclass(frozen=True)
class EventSpec:
    """One timeline entry to append."""

    event_type: str
    phase: str
    summary: str
    source: str = "domain-event"
    retriable: bool = False
    # When it happened, if not now: the agent's clock for what the agent did (also when it
    # arrives late, replayed after a restart), so the timeline shows when things happened.
    at: datetime | None = None


class DeploymentStore:
    """Appends events and logs with per-deployment ordering, then wakes stream readers."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        # Sequence numbers come from the row's counters; one coordinator process owns them, and
        # this lock keeps two coroutines from reading the same counter value.
        self._locks: dict[str, asyncio.Lock] = {}
        # Other capabilities (notifications) hear about outcomes here, after the commit.
        self.outcome_hooks: list[OutcomeHook] = []

    def _lock(self, deployment_id: str) -> asyncio.Lock:
        lock = self._locks.get(deployment_id)
        if lock is None:
            lock = self._locks[deployment_id] = asyncio.Lock()
        return lock

    async def transition(
        self,
        deployment_id: str,
        *,
        allowed_from: Iterable[str] | None,
        status: str,
        event: EventSpec | None = None,
        **fields: Any,
    ) -> bool:
        """Set ``status`` (and ``fields``) if the current status is allowed; append ``event``.

        Returns whether the transition happened (False: the row moved on meanwhile).
        """
        async with self._lock(deployment_id), in_transaction():
            row = await models.Deployment.filter(id=deployment_id).select_for_update().first()
            if row is None:
                return False
            if allowed_from is not None and row.status not in set(allowed_from):
                return False
            await models.Deployment.filter(id=deployment_id).update(status=status, **fields)
            if event is not None:
                await self._append(row, event, status)
        self.notifier.notify(deployment_id)
        if status in TERMINAL:
            for hook in self.outcome_hooks:
                try:
                    await hook(deployment_id, status)
                except Exception:
                    logger.exception("an outcome hook failed for deployment %s", deployment_id)
        return True

    async def event(self, deployment_id: str, event: EventSpec) -> None:
        """Append one event with the deployment's current status."""
        async with self._lock(deployment_id), in_transaction():
            row = await models.Deployment.filter(id=deployment_id).select_for_update().first()
            if row is None:
                return
            await self._append(row, event, row.status)
        self.notifier.notify(deployment_id)

    async def _append(self, row: models.Deployment, event: EventSpec, status: str) -> None:
        fresh: list[Any] = await models.Deployment.filter(id=row.id).values_list(
            "event_count", flat=True
        )
        sequence = int(fresh[0]) + 1
        _ = await models.DeploymentEvent.create(
            deployment_id=row.id,
            sequence=sequence,
            emitted_at=event.at or datetime.now(UTC),
            source=event.source,
            event_type=event.event_type,
            phase=event.phase,
            status=status,
            retriable=event.retriable,
            summary=event.summary,
        )
        await models.Deployment.filter(id=row.id).update(event_count=sequence)

    async def create(
        self, fields: dict[str, Any], events: list[tuple[EventSpec, str]]
    ) -> models.Deployment:
        """Insert a deployment and its first events; call inside the caller's transaction."""
        row = await models.Deployment.create(**fields, event_count=0)
        for spec, status in events:
            await self._append(row, spec, status)
        return row

    async def add_lines(
        self, deployment_id: str, lines: Iterable[DeployLogLine], masker: Masker
    ) -> int:
        """Store agent lines once each (by agent sequence); lines with ``event`` join the timeline.

        Returns how many lines were new.
        """
        added = 0
        async with self._lock(deployment_id), in_transaction():
            row = await models.Deployment.filter(id=deployment_id).select_for_update().first()
            if row is None:
                return 0
            batch = list(lines)
            stored: list[Any] = await models.DeploymentLog.filter(
                deployment_id=deployment_id,
                agent_sequence__in=[line.sequence for line in batch],
            ).values_list("agent_sequence", flat=True)
            known = {int(v) for v in stored}
            count = row.log_count
            for line in sorted(batch, key=lambda ln: ln.sequence):
                if line.sequence in known:
                    continue  # a replay after a reconnect
                known.add(line.sequence)
                message, hit = masker.mask(line.message)
                count += 1
                try:
                    _ = await models.DeploymentLog.create(
                        deployment_id=deployment_id,
                        sequence=count,
                        timestamp=line.timestamp,
                        source="berth-agent",
                        phase=line.phase,
                        level=line.level,
                        stream=line.stream,
                        message=message,
                        masked=line.masked or hit,
                        agent_sequence=line.sequence,
                    )
                except IntegrityError:  # pragma: no cover - guarded by the set above
                    count -= 1
                    continue
                added += 1
                # Once the outcome is stored it stays the timeline's last event: lines that
                # still come (a plan canceled while the agent was taking it) are logs only.
                if line.event and row.status not in TERMINAL:
                    await self._append(
                        row,
                        EventSpec(
                            event_type=masker.mask(line.event)[0],
                            phase=line.phase,
                            summary=message,
                            source="agent",
                            retriable=line.level == "error",
                            at=line.timestamp,
                        ),
                        row.status,
                    )
            await models.Deployment.filter(id=deployment_id).update(log_count=count)
        if added:
            self.notifier.notify(deployment_id)
        return added
