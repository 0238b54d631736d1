"""Signed threshold webhooks: HMAC-SHA256 over the raw body, sent in the background with retries.

Delivery never blocks sample ingest: ``WebhookSender.submit`` only starts a task in the sender's
own TaskGroup (bounded by a semaphore) and returns. Each attempt has a timeout; failed attempts
are retried a bounded number of times with growing pauses, then dropped with a log line.
"""

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from coordinator.outbound import OutboundGuard, TargetRefused
from shared.errors import InvalidRequest

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Berth-Signature"
EVENT_HEADER: Final = "X-Berth-Event"
TIMESTAMP_HEADER: Final = "X-Berth-Timestamp"
DELIVERY_HEADER: Final = "X-Berth-Delivery"
STATE_CHANGED_EVENT: Final = "runtime-monitoring.threshold-state-changed"


def _host(url: str) -> str:
    """Only the host of a webhook URL goes to logs: chat webhooks carry their token in the path."""
    return urlsplit(url).netloc or "?"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of body keyed by secret>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant time)."""
    return hmac.compare_digest(sign(secret, body), header)


def state_change_payload(
    *,
    delivery_id: str,
    policy_id: str,
    scope: dict[str, str],
    previous_state: str,
    evaluation: dict[str, Any],
    sample_id: str,
    observed_at: datetime,
) -> dict[str, Any]:
    """The body of a ``threshold-state-changed`` event (docs/thresholds.md shows it)."""
    return {
        "event": STATE_CHANGED_EVENT,
        "deliveryId": delivery_id,
        "policyId": policy_id,
        "scope": scope,
        "previousState": previous_state,
        "state": evaluation["state"],
        "crossed": evaluation["crossed"],
        "sampleId": sample_id,
        "observedAt": observed_at.isoformat(),
        "sentAt": datetime.now(UTC).isoformat(),
    }


@dataclass(frozen=True)
class Delivery:
    """One event to one endpoint."""

    delivery_id: str
    url: str
    secret: str
    event: str
    payload: dict[str, Any]


class WebhookSender:
    """Owns the delivery tasks; ``running()`` is the lifetime (an app cleanup context)."""

    def __init__(
        self,
        *,
        attempts: int = 4,
        timeout_seconds: float = 5.0,
        first_pause_seconds: float = 1.0,
        concurrency: int = 16,
        guard: OutboundGuard | None = None,
    ) -> None:
        # Private targets are refused unless the operator allowed them (coordinator/outbound.py).
        self.guard = guard or OutboundGuard()
        self.attempts = attempts
        self.timeout_seconds = timeout_seconds
        self.first_pause_seconds = first_pause_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: asyncio.TaskGroup | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.dropped = 0
        self.refused = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Accept deliveries until the context exits, then cancel what is still retrying."""
        async with (
            aiohttp.ClientSession(connector=self.guard.connector()) as http,
            asyncio.TaskGroup() as tasks,
        ):
            self._http, self._tasks = http, tasks
            try:
                yield
            finally:
                self._tasks = None
                # Pending retries are abandoned on shutdown: the next state change notifies again.
                for task in self._pending:
                    task.cancel()
                self._http = None

    def submit(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` in the background; False (and logged) when the sender is stopped."""
        if self._tasks is None:
            logger.warning("webhook %s dropped: sender is not running", delivery.delivery_id)
            self.dropped += 1
            return False
        task = self._tasks.create_task(self._deliver(delivery))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _deliver(self, delivery: Delivery) -> None:
        body = orjson.dumps(delivery.payload)
        pause = self.first_pause_seconds
        async with self._slots:
            for attempt in range(1, self.attempts + 1):
                try:
                    if await self._attempt(delivery, body):
                        self.delivered += 1
                        return
                except TargetRefused:
                    # A refused target stays refused: no retries.
                    self.refused += 1
                    self.dropped += 1
                    logger.warning(
                        "webhook %s to %s refused: the target address is not allowed",
                        delivery.delivery_id,
                        _host(delivery.url),
                    )
                    return
                if attempt < self.attempts:
                    await asyncio.sleep(pause)
                    pause *= 2
        self.dropped += 1
        logger.warning(
            "webhook %s to %s dropped after %d attempts",
            delivery.delivery_id,
            _host(delivery.url),
            self.attempts,
        )

    async def _attempt(self, delivery: Delivery, body: bytes) -> bool:
        http = self._http
        if http is None:
            return False
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.delivery_id,
            TIMESTAMP_HEADER: str(int(time.time())),
            SIGNATURE_HEADER: sign(delivery.secret, body),
        }
        try:
            # Address literals never reach the resolver, so the URL is checked here as well.
            self.guard.check_url(delivery.url)
        except InvalidRequest as exc:
            raise TargetRefused(exc.message) from exc
        try:
            async with http.post(
                delivery.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return True
                logger.info("webhook to %s answered %d", _host(delivery.url), response.status)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, TargetRefused):
                raise exc.os_error from exc
            logger.info("webhook to %s failed: %s", _host(delivery.url), type(exc).__name__)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("webhook to %s failed: %s", _host(delivery.url), type(exc).__name__)
        return False
