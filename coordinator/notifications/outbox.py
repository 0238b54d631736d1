"""The durable delivery outbox: due deliveries are attempted, retried with backoff, logged.

Deliveries are rows (coordinator/db/notification_models.py), so nothing queued is lost by a
restart: the worker picks up whatever is due when it starts. Each attempt has a timeout and
its outcome is appended to the row's ``attempts`` log. A failed attempt is scheduled again
after ``first_pause * 2**(attempt-1)`` seconds until ``max_attempts``; a refusal that asking
again cannot change (a refused target, a 4xx) fails at once. Canceling a delivery (operator
work) wins over an attempt in flight: results are only written while the row is still due.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp

from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.notifications import channels
from coordinator.notifications.subscriptions import reveal
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring, SecretError

logger = logging.getLogger(__name__)

DUE: Final = ("pending", "retry-scheduled")
_BATCH: Final = 50
_IDLE_SECONDS: Final = 30.0


class Outbox:
    """Owns the delivery worker and its attempt tasks (``running()`` is their lifetime)."""

    def __init__(
        self,
        keyring: Keyring,
        guard: OutboundGuard,
        *,
        max_attempts: int = 6,
        first_pause_seconds: float = 10.0,
        timeout_seconds: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        self.keyring = keyring
        self.guard = guard
        self.max_attempts = max_attempts
        self.first_pause_seconds = first_pause_seconds
        self.timeout_seconds = timeout_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._inflight: set[str] = set()
        self._http: aiohttp.ClientSession | None = None
        self.attempted = 0

    def wake(self) -> None:
        """Look for due deliveries now (something was queued or retried)."""
        self._wakeup.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver until the context exits; attempts in flight are canceled (and stay due)."""
        async with (
            aiohttp.ClientSession(connector=self.guard.connector()) as http,
            asyncio.TaskGroup() as tasks,
        ):
            self._http = http
            worker = tasks.create_task(self._work(tasks))
            try:
                yield
            finally:
                worker.cancel()
                self._http = None

    async def _work(self, tasks: asyncio.TaskGroup) -> None:
        attempts: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wakeup.clear()
                try:
                    wait = await self._dispatch_due(tasks, attempts)
                except Exception:
                    logger.exception("notification outbox: a pass failed")
                    wait = _IDLE_SECONDS
                try:
                    async with asyncio.timeout(wait):
                        _ = await self._wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            for task in attempts:
                task.cancel()

    async def _dispatch_due(
        self, tasks: asyncio.TaskGroup, attempts: set[asyncio.Task[None]]
    ) -> float:
        """Start an attempt for each due delivery; return how long to sleep until the next."""
        now = datetime.now(UTC)
        due = (
            await NotificationDelivery.filter(status__in=DUE, next_attempt_at__lte=now)
            .exclude(id__in=list(self._inflight))
            .order_by("next_attempt_at")
            .limit(_BATCH)
        )
        for row in due:
            self._inflight.add(row.id)
            task = tasks.create_task(self._attempt(row))
            attempts.add(task)
            task.add_done_callback(attempts.discard)
        if len(due) == _BATCH:
            return 0.0
        upcoming = (
            await NotificationDelivery.filter(status__in=DUE, next_attempt_at__gt=now)
            .order_by("next_attempt_at")
            .first()
        )
        if upcoming is None or upcoming.next_attempt_at is None:
            return _IDLE_SECONDS
        return max(0.05, min(_IDLE_SECONDS, (upcoming.next_attempt_at - now).total_seconds()))

    async def _attempt(self, row: NotificationDelivery) -> None:
        try:
            async with self._slots:
                try:
                    outcome, took = await self._send(row)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # A bug or an unexpected answer counts as a failed attempt (retried with
                    # backoff, then failed), never as a delivery to try again at once.
                    logger.exception("notification delivery %s: the attempt failed", row.id)
                    outcome = channels.Outcome(
                        False, error=f"{type(exc).__name__}: {exc}"[:500], error_code="internal"
                    )
                    took = 0.0
                await self._record(row, outcome, took)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("notification delivery %s: recording the attempt failed", row.id)
        finally:
            self._inflight.discard(row.id)
            self.wake()  # a retry may now be the earliest due

    async def _send(self, row: NotificationDelivery) -> tuple[channels.Outcome, float]:
        started = time.monotonic()
        subscription = await NotificationSubscription.get_or_none(id=row.subscription_id)
        if subscription is None:
            gone = channels.Outcome(
                False,
                error="the subscription was deleted",
                error_code="subscription-deleted",
                retriable=False,
            )
            return gone, 0.0
        try:
            target = reveal(self.keyring, subscription)
        except SecretError:
            sealed = channels.Outcome(
                False,
                error="the subscription's secret cannot be decrypted",
                error_code="secret-unreadable",
                retriable=False,
            )
            return sealed, 0.0
        http = self._http
        if http is None:
            raise asyncio.CancelledError
        try:
            async with asyncio.timeout(self.timeout_seconds + 5):
                if target.channel == "email":
                    outcome = await channels.send_email(
                        self.guard, target, row.payload, self.timeout_seconds
                    )
                else:
                    outcome = await channels.post(
                        http, self.guard, target, row.payload, self.timeout_seconds
                    )
        except TimeoutError:
            outcome = channels.Outcome(False, error="the attempt timed out", error_code="timeout")
        return outcome, time.monotonic() - started

    async def _record(
        self, row: NotificationDelivery, outcome: channels.Outcome, took: float
    ) -> None:
        now = datetime.now(UTC)
        number = row.attempt_count + 1
        log: list[dict[str, Any]] = [
            *row.attempts,
            {
                "attempt": number,
                "attemptedAt": now.isoformat(),
                "succeeded": outcome.ok,
                "statusCode": outcome.status_code,
                "errorCode": outcome.error_code,
                "error": outcome.error,
                "durationMs": round(took * 1000),
            },
        ]
        fields: dict[str, Any] = {
            "attempt_count": number,
            "attempts": log[-self.max_attempts * 2 :],
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "error_code": outcome.error_code,
            "updated_at": now,
        }
        if outcome.ok:
            fields.update(status="succeeded", finished_at=now, next_attempt_at=None)
        elif not outcome.retriable or number >= self.max_attempts:
            fields.update(status="failed", finished_at=now, next_attempt_at=None)
        else:
            pause = self.first_pause_seconds * 2 ** (number - 1)
            fields.update(status="retry-scheduled", next_attempt_at=now + timedelta(seconds=pause))
        self.attempted += 1
        # Only while still due: a cancel or dead-letter during the attempt stays as it is.
        _ = await NotificationDelivery.filter(id=row.id, status__in=DUE).update(**fields)
