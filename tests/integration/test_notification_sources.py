"""Event sources beyond deployments: a real agent that stays away past the grace period is
reported ``server.offline`` (once), and a threshold state change reaches its subscribers."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from coordinator.db.notification_models import NotificationDelivery
from coordinator.monitoring.thresholds import EVALUATOR_KEY
from coordinator.notifications import NOTIFICATIONS_KEY
from tests.harness import Coordinator, eventually, serving
from tests.integration.stacks import start_agent

pytestmark = pytest.mark.docker


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with serving(
        tmp_path / "coordinator",
        database_url,
        allow_private_webhook_targets=True,
        server_offline_grace_seconds=1.0,
    ) as harness:
        yield harness


async def test_an_agent_that_stays_away_is_reported_offline_and_thresholds_notify(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    agent, server_id = await start_agent(coordinator, admin_token, tmp_path / "agent")
    try:
        status, sub, _ = await coordinator.call(
            "POST",
            "/notification-subscriptions",
            token=admin_token,
            json={
                "name": "ops",
                "channel": "webhook",
                "events": ["server.offline", "runtime-monitoring.threshold-state-changed"],
                "url": f"http://127.0.0.1:{runner.addresses[0][1]}/in",
                "signingSecret": "offline-secret-0123456789",
            },
        )
        assert status == 201, sub
        await agent.stop()

        async def told() -> bool:
            return any(e["eventType"] == "server.offline" for e in received)

        await eventually(told, timeout=30, what="the server.offline webhook")
        [offline] = [e for e in received if e["eventType"] == "server.offline"]
        assert offline["subject"] == {"serverId": server_id}
        assert offline["data"]["graceSeconds"] == 1.0

        # A threshold evaluator's state change, as the evaluator reports it to observers.
        assert coordinator._runner is not None
        sources = coordinator._runner.app[NOTIFICATIONS_KEY].sources
        evaluator = coordinator._runner.app[EVALUATOR_KEY]
        assert sources.on_threshold_state in evaluator.state_observers
        sources.on_threshold_state(
            {
                "policyId": "thp_test",
                "scopeKind": "server",
                "scopeId": server_id,
                "previousState": "ok",
                "state": "critical",
                "crossed": [],
                "sampleId": "smp_1",
                "observedAt": "2026-01-01T00:00:00+00:00",
            }
        )

        async def threshold_told() -> bool:
            return any(
                e["eventType"] == "runtime-monitoring.threshold-state-changed" for e in received
            )

        await eventually(threshold_told, what="the threshold webhook")
        [change] = [
            e for e in received if e["eventType"] == "runtime-monitoring.threshold-state-changed"
        ]
        assert change["subject"] == {"serverId": server_id}
        assert (change["data"]["previousState"], change["data"]["state"]) == ("ok", "critical")
        assert await NotificationDelivery.filter(event_type="server.offline").count() == 1
    finally:
        await agent.stop()
        await runner.cleanup()
