"""The operator work ledger over notification deliveries: list and show in the reference shape,
retry as a new item, cancel, dead-letter, mark-recovered, 409s, prune dry run = real run."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from coordinator.db.notification_models import NotificationDelivery
from tests.harness import Coordinator, eventually, serving
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_projects_api import scoped_token


@pytest.fixture
async def open_coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """Loopback receivers allowed; one attempt per delivery."""
    async with serving(
        tmp_path / "open",
        database_url,
        allow_private_webhook_targets=True,
        notification_max_attempts=1,
    ) as harness:
        yield harness


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_deliveries_are_work_that_can_be_retried_canceled_and_pruned(
    open_coordinator: Coordinator,
) -> None:
    coordinator = open_coordinator
    token = await coordinator.bootstrap()
    answers = [503]

    async def receive(request: web.Request) -> web.Response:
        return web.Response(status=answers[0])

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            status, answer, _ = await coordinator.call(method, path, token=token, json=body)
            return status, answer

        status, sub = await call(
            "POST",
            "/notification-subscriptions",
            {
                "name": "in",
                "channel": "webhook",
                "events": ["deployment.failed"],
                "url": f"http://127.0.0.1:{runner.addresses[0][1]}/in",
                "signingSecret": "s" * 20,
            },
        )
        assert status == 201, sub
        status, queued = await call("POST", f"/notification-subscriptions/{sub['id']}/test")
        assert status == 202, queued
        first = queued["deliveryId"]

        async def status_of(work_id: str, wanted: str) -> bool:
            code, shown = await call("GET", f"/operator-work/{work_id}")
            assert code == 200, shown
            return bool(shown["item"]["status"] == wanted)

        await eventually(lambda: status_of(first, "failed"), what="the delivery to fail")
        status, shown = await call("GET", f"/operator-work/{first}")
        item = shown["item"]
        assert shown["schemaVersion"] == "operator-work.show/v1"
        assert (item["kind"], item["operationKey"], item["errorCode"]) == (
            "system",
            "notification-delivery",
            "endpoint-error",
        )
        assert item["safeDetails"]["lastStatusCode"] == "503"
        assert "retry" in item["nextActions"]
        status, listed = await call("GET", "/operator-work?kind=system&status=failed")
        assert [i["id"] for i in listed["items"]] == [first]
        status, none = await call("GET", "/operator-work?kind=deployment")
        assert none["items"] == []

        # Retry: a new item, delivered now that the receiver answers.
        answers[0] = 204
        status, retried = await call("POST", f"/operator-work/{first}/retry", {})
        assert status == 200, retried
        assert retried["retryOfWorkId"] == first
        assert retried["status"] == "pending"
        second = retried["workId"]
        await eventually(lambda: status_of(second, "succeeded"), what="the retry to succeed")
        status, shown = await call("GET", f"/operator-work/{second}")
        assert shown["item"]["safeDetails"]["retryOfWorkId"] == first
        # A succeeded item is neither canceled nor dead-lettered; the failed one is recovered.
        assert_error(
            await coordinator.call(
                "POST",
                f"/operator-work/{second}/dead-letter",
                token=token,
                json={"reason": "x"},
            ),
            409,
            "conflict",
        )
        status, recovered = await call("POST", f"/operator-work/{first}/mark-recovered", {})
        assert (status, recovered["status"]) == (200, "succeeded")

        # A delivery waiting for its next attempt is canceled, and stays canceled.
        now = datetime.now(UTC)
        waiting = await NotificationDelivery.create(
            id="ndl_waiting",
            organization_id=(await NotificationDelivery.get(id=first)).organization_id,
            subscription_id=sub["id"],
            event_id="manual",
            event_type="deployment.failed",
            payload={},
            status="retry-scheduled",
            attempt_count=1,
            next_attempt_at=now + timedelta(hours=1),
            attempts=[],
            created_at=now,
            updated_at=now,
        )
        status, canceled = await call(
            "POST", f"/operator-work/{waiting.id}/cancel", {"reason": "receiver retired"}
        )
        assert (status, canceled["status"]) == (200, "canceled")
        assert (await NotificationDelivery.get(id=waiting.id)).status == "canceled"
        assert_error(
            await coordinator.call(
                "POST", f"/operator-work/{waiting.id}/cancel", token=token, json={}
            ),
            409,
            "conflict",
        )

        # Prune: the dry run reports exactly what the real run then removes.
        body = {
            "before": _z(datetime.now(UTC) + timedelta(minutes=1)),
            "statuses": ["succeeded", "canceled"],
        }
        status, dry = await call("POST", "/operator-work/prune", {**body, "dryRun": True})
        assert status == 200, dry
        assert (dry["matchedCount"], dry["prunedCount"]) == (3, 0)
        assert dry["countsByStatus"] == {
            "succeeded": 2,
            "failed": 0,
            "canceled": 1,
            "dead-lettered": 0,
        }
        assert await NotificationDelivery.all().count() == 3
        status, real = await call("POST", "/operator-work/prune", body)
        assert (real["matchedCount"], real["prunedCount"]) == (3, 3)
        assert real["countsByStatus"] == dry["countsByStatus"]
        assert await NotificationDelivery.all().count() == 0

        # Unknown ids and missing permissions.
        assert_error(
            await coordinator.call("GET", "/operator-work/ndl_nothing", token=token),
            404,
            "not_found",
        )
        assert_error(
            await coordinator.call("GET", "/operator-work/xyz_nothing", token=token),
            404,
            "not_found",
        )
        reader = await scoped_token(coordinator, token, ["operator-work:read"])
        assert_error(
            await coordinator.call("POST", f"/operator-work/{first}/retry", token=reader, json={}),
            403,
            "forbidden",
        )
        ledger_only = await scoped_token(coordinator, token, ["operator-work:write"])
        assert_error(
            await coordinator.call(
                "POST", f"/operator-work/{first}/retry", token=ledger_only, json={}
            ),
            403,
            "forbidden",
        )
    finally:
        await runner.cleanup()
