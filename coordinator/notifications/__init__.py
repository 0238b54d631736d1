"""Notifications: subscriptions to events, delivered to signed webhooks, Slack, Discord, e-mail.

``install`` wires the event sources (deployment outcomes, agents offline, threshold state
changes) to the publisher, and runs the durable outbox that delivers with retries.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from coordinator.appkeys import ENGINE_KEY, KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.monitoring.thresholds import EVALUATOR_KEY
from coordinator.notifications.events import Publisher
from coordinator.notifications.outbox import Outbox
from coordinator.notifications.sources import EventSources
from coordinator.outbound import guard_for
from coordinator.scheduling import SCHEDULER_KEY


@dataclass(frozen=True)
class Notifications:
    """The running parts, for routes and tests."""

    publisher: Publisher
    outbox: Outbox
    sources: EventSources


NOTIFICATIONS_KEY: web.AppKey[Notifications] = web.AppKey("notifications")


def install(app: web.Application) -> None:
    """Register the sources' hooks, the outbox worker and the app key (after deployments,
    monitoring and scheduling, whose hooks it uses)."""
    settings = app[SETTINGS_KEY]
    outbox = Outbox(
        app[KEYRING_KEY],
        guard_for(app),
        max_attempts=settings.notification_max_attempts,
        first_pause_seconds=settings.notification_retry_first_pause_seconds,
        timeout_seconds=settings.notification_timeout_seconds,
    )
    publisher = Publisher(outbox.wake)
    sources = EventSources(publisher, app[REGISTRY_KEY], settings.server_offline_grace_seconds)
    app[NOTIFICATIONS_KEY] = Notifications(publisher, outbox, sources)
    app[ENGINE_KEY].store.outcome_hooks.append(sources.on_deployment_outcome)
    app[SCHEDULER_KEY].outcome_hooks.append(sources.on_task_run_outcome)
    app[REGISTRY_KEY].add_listener(sources)
    evaluator = app.get(EVALUATOR_KEY)
    if evaluator is not None:
        evaluator.state_observers.append(sources.on_threshold_state)

    async def notifications_ctx(app: web.Application) -> AsyncIterator[None]:
        # After the database context, so deliveries stop before the database closes.
        async with outbox.running(), asyncio.TaskGroup() as tasks:
            sources.attach(tasks)
            try:
                yield
            finally:
                sources.attach(None)

    app.cleanup_ctx.append(notifications_ctx)
