"""The event catalogue and publishing: an event becomes one queued delivery per subscription.

Each source (coordinator/notifications/sources.py) builds an ``Event`` and calls ``publish``;
a later capability (task runs, backups, certificates) adds its event types to ``EVENT_TYPES``
and calls ``publish`` from its own hook. Only types with a source are listed, so a subscription
cannot ask for an event nothing sends.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.ids import new_id

logger = logging.getLogger(__name__)

EVENT_SCHEMA: Final = "notifications.event/v1"
TEST_EVENT: Final = "notification.test"

EVENT_TYPES: Final[dict[str, str]] = {
    "deployment.succeeded": "a deployment finished and its release serves",
    "deployment.failed": "a deployment failed (the error code and message are included)",
    "server.offline": "a server's agent has been disconnected for the offline grace period",
    "runtime-monitoring.threshold-state-changed": (
        "a threshold policy's state moved (ok, warning, critical)"
    ),
    "scheduled-task-run.succeeded": "a task run's command exited with status 0",
    "scheduled-task-run.failed": (
        "a task run failed: non-zero exit, timeout, refused start or lost by the agent (each "
        "attempt of a retried run; a run stopped on purpose is not reported)"
    ),
    "scheduled-task-run.timed-out": (
        "a task run was killed at its timeout (also reported as scheduled-task-run.failed)"
    ),
    "certificate.issued": "a certificate was issued for a domain (agent-reported or DNS-01)",
    "certificate.renewed": "a certificate that had been issued before was replaced by a new one",
    "certificate.failed": (
        "a certificate attempt failed (errorCode, failurePhase, retriable, retryAfter included)"
    ),
    "backup.succeeded": "a database backup finished and its artifact is ready",
    "backup.failed": "a database backup failed (failureCode and failureMessage included)",
    "backup.verified": "a backup was restored into a throwaway database and counted",
    "backup.verification-failed": "a backup's verification restore failed",
    "restore.succeeded": "a backup was restored into a database",
    "restore.failed": "a restore of a backup failed (its code and message included)",
}
"""Event types a subscription may name, with what they mean (docs/notifications.md)."""


@dataclass(frozen=True)
class Event:
    """Something that happened, as every channel renders it."""

    event_type: str
    # Stable per happening, so publishing it twice queues it once per subscription.
    event_id: str
    organization_id: str
    summary: str
    subject: dict[str, str | None] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def payload(self, delivery_id: str) -> dict[str, Any]:
        """The ``notifications.event/v1`` document a webhook receives."""
        return {
            "schemaVersion": EVENT_SCHEMA,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "deliveryId": delivery_id,
            "occurredAt": self.occurred_at.isoformat(),
            "summary": self.summary,
            "subject": self.subject,
            "data": self.data,
        }


async def enqueue(
    subscriptions: list[NotificationSubscription], event: Event
) -> list[NotificationDelivery]:
    """Queue ``event`` for each subscription (once: a repeat of the same event id is ignored)."""
    queued: list[NotificationDelivery] = []
    now = datetime.now(UTC)
    for subscription in subscriptions:
        delivery_id = new_id("ndl")
        try:
            async with in_transaction():
                row = await NotificationDelivery.create(
                    id=delivery_id,
                    organization_id=subscription.organization_id,
                    subscription_id=subscription.id,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    payload=event.payload(delivery_id),
                    status="pending",
                    attempt_count=0,
                    next_attempt_at=now,
                    attempts=[],
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            continue  # already queued for this subscription
        queued.append(row)
    return queued


class Publisher:
    """Turns events into queued deliveries and wakes the outbox."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self.published = 0

    async def publish(self, event: Event) -> int:
        """Queue ``event`` for every enabled subscription of its organization that names its
        type; returns how many deliveries were queued."""
        candidates = await NotificationSubscription.filter(
            organization_id=event.organization_id, enabled=True
        )
        wanted = [s for s in candidates if event.event_type in s.events]
        queued = await enqueue(wanted, event)
        if queued:
            self.published += 1
            self._wake()
        return len(queued)

    async def publish_quietly(self, event: Event) -> None:
        """``publish`` for hooks: a notification problem never disturbs the source's work."""
        try:
            _ = await self.publish(event)
        except Exception:
            logger.exception("notifications: queuing %s failed", event.event_type)
