"""What a coordinator that lost part of a deployment learns from the agent's replay.

After a crash the agent sends its inventory, then the lines and result it still holds; the
timeline must come out in the agent's order, with the agent's times, the outcome last.
"""

from datetime import UTC, datetime, timedelta

from shared.messages import DeployAccepted, DeployPlan, DeployResultAck, KnownDeployment
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.test_deployment_engine import (
    accept,
    create_deployment,
    deployment,
    events_of,
    make_world,
    wait_status,
)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_finished_deployment_in_the_inventory_ends_with_its_replayed_result(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    await wait_status(coordinator, admin_token, deployment_id, "running")
    await world.agent.close()
    # The agent finished while the coordinator was away: inventory, replayed lines, result.
    finished = KnownDeployment(deployment_id=deployment_id, state="finished", outcome="succeeded")
    await world.agent.connect(inventory=[finished])
    await world.agent.progress(
        deployment_id, {"sequence": 1, "message": "switched", "event": "traffic-switched"}
    )
    ended = datetime.now(UTC) - timedelta(seconds=1)  # earlier than anything this side does
    re = await world.agent.result(
        deployment_id, "succeeded", imageId="sha256:" + "e" * 64, finishedAt=ended
    )
    assert (await world.agent.expect(DeployResultAck)).re == re
    item = await deployment(coordinator, admin_token, deployment_id)
    assert item["status"] == "succeeded"
    assert item["artifact"]["imageId"] == "sha256:" + "e" * 64
    assert _time(item["finishedAt"]) == ended  # the agent's time, not the reconnect's
    events = await events_of(coordinator, admin_token, deployment_id)
    timeline = [(e["eventType"], e["status"]) for e in events]
    assert timeline[-2:] == [("traffic-switched", "running"), ("deployment-succeeded", "succeeded")]
    assert _time(events[-1]["emittedAt"]) == ended
    await world.agent.close()


async def test_a_lost_acceptance_is_recovered_with_the_agents_time(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    accepted_at = datetime.now(UTC)
    # The agent took the plan, but its answer never got stored (the link dropped first).
    await world.agent.close()
    known = KnownDeployment(deployment_id=deployment_id, state="running", accepted_at=accepted_at)
    await world.agent.connect(inventory=[known])
    item = await wait_status(coordinator, admin_token, deployment_id, "running")
    assert _time(item["startedAt"]) == accepted_at
    # A plan re-sent meanwhile is answered as already known: nothing changes.
    for again in [m for m in world.agent.received if isinstance(m, DeployPlan)]:
        await world.agent.send(
            DeployAccepted(
                id=world.agent.next_id(),
                re=again.id,
                deployment_id=plan.deployment_id,
                already_known=True,
                accepted_at=accepted_at,
            )
        )
    await world.agent.progress(
        deployment_id, {"sequence": 1, "message": "starting", "event": "phase-started"}
    )
    re = await world.agent.result(deployment_id, "succeeded")
    assert (await world.agent.expect(DeployResultAck)).re == re
    events = await events_of(coordinator, admin_token, deployment_id)
    timeline = [(e["eventType"], e["status"]) for e in events]
    assert timeline[-4:] == [
        ("dispatched", "planned"),
        ("agent-accepted", "running"),
        ("phase-started", "running"),
        ("deployment-succeeded", "succeeded"),
    ], timeline
    assert _time(events[-3]["emittedAt"]) == accepted_at
    await world.agent.close()


async def test_lines_that_overtake_the_acceptance_find_the_deployment_running(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    await world.agent.progress(
        deployment_id, {"sequence": 1, "message": "pulling", "event": "phase-started"}
    )
    item = await wait_status(coordinator, admin_token, deployment_id, "running")
    assert item["startedAt"] is not None
    await accept(world, plan)  # the reply, late: already settled
    re = await world.agent.result(deployment_id, "succeeded")
    assert (await world.agent.expect(DeployResultAck)).re == re
    timeline = [
        (e["eventType"], e["status"])
        for e in await events_of(coordinator, admin_token, deployment_id)
    ]
    assert timeline[-3:] == [
        ("agent-accepted", "running"),
        ("phase-started", "running"),
        ("deployment-succeeded", "succeeded"),
    ], timeline
    assert [t for t, _ in timeline].count("agent-accepted") == 1
    await world.agent.close()


async def test_lines_after_the_outcome_are_logged_but_the_outcome_stays_last(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    await world.agent.expect(DeployPlan)
    # Canceled while the agent is taking the plan: canceled at once, the agent starts anyway.
    status, body, _ = await coordinator.call(
        "POST",
        f"/deployments/{deployment_id}/cancel",
        token=admin_token,
        json={"confirm": deployment_id},
    )
    assert (status, body["status"]) == (200, "canceled"), body
    await world.agent.progress(
        deployment_id, {"sequence": 1, "message": "pulling", "event": "phase-started"}
    )

    async def logged() -> bool:
        return bool((await deployment(coordinator, admin_token, deployment_id))["logCount"] == 1)

    await eventually(logged, timeout=10, what="the late line stored")
    timeline = [
        (e["eventType"], e["status"])
        for e in await events_of(coordinator, admin_token, deployment_id)
    ]
    assert timeline[-1] == ("deployment-canceled", "canceled"), timeline
    await world.agent.close()
