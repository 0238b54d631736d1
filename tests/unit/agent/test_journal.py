"""Deployment manager and journal: durable accept, no double apply, replay, ack, restart."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from agent.deploy_feature import DeploymentFeature
from agent.deployments import DeploymentManager, progress_batches
from agent.dispatch import Dispatcher
from agent.features import LinkContext
from agent.journal import Journal, JournalEntry
from agent.rollout import HealthProbe
from agent.runtime import RunSpec
from shared.errors import InvalidMessage
from shared.messages import (
    AgentMessage,
    DeployAccepted,
    DeployCancel,
    DeployCancelAck,
    DeployLogLine,
    DeployProgress,
    DeployResult,
    DeployResultAck,
    ErrorMessage,
    HealthSpec,
    IdSequence,
    Inventory,
    ResourceProbe,
    ResourceProbeResult,
    RuntimeControl,
    RuntimeControlResult,
)
from shared.version import MAX_FRAME_BYTES
from shared.wire import dump_json
from tests.fakes.runtime import FakeEdge, FakeRuntime
from tests.polling import eventually
from tests.unit.agent.test_rollout import IMAGE, SECRET, make_plan, seed_old


class Outbox:
    def __init__(self) -> None:
        self.sent: list[AgentMessage] = []

    async def send(self, message: AgentMessage) -> None:
        self.sent.append(message)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [m for m in self.sent if isinstance(m, kind)]


async def passing(port: int, health: HealthSpec) -> tuple[bool, str]:
    return True, "HTTP 200 from /"


@asynccontextmanager
async def running(
    manager: DeploymentManager,
) -> AsyncIterator[DeploymentManager]:
    task = asyncio.create_task(manager.run())
    try:
        await manager.wait_ready()
        yield manager
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def make_runtime() -> FakeRuntime:
    runtime = FakeRuntime()
    runtime.images[IMAGE] = "sha256:" + "a" * 64
    return runtime


def make_manager(
    runtime: FakeRuntime, edge: FakeEdge, tmp_path: Path, probe: HealthProbe | None = None
) -> DeploymentManager:
    return DeploymentManager(runtime, edge, tmp_path, probe=probe or passing)


def journal_file(tmp_path: Path, deployment_id: str) -> dict[str, Any]:
    return cast(
        dict[str, Any], json.loads((tmp_path / "deployments" / f"{deployment_id}.json").read_text())
    )


async def test_plan_is_journaled_before_acceptance_and_never_applied_twice(
    tmp_path: Path,
) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        assert await manager.accept(make_plan()) == (False, None)
        # Durable before the caller answers deploy_accepted.
        assert journal_file(tmp_path, "dep_New")["deploymentId"] == "dep_New"
        assert await manager.accept(make_plan()) == (True, None)
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")
        assert await manager.accept(make_plan()) == (True, "succeeded")
        await manager.acknowledge("dep_New")
    assert [c for c in runtime.calls if c[0] == "run"] == [("run", "berth-web-dep_new-1")]
    # After a restart and the ack, the tombstone still prevents a second apply.
    tombstone = journal_file(tmp_path, "dep_New")
    assert tombstone["acked"] is True
    assert tombstone["lines"] == []
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        assert await manager.accept(make_plan()) == (True, "succeeded")
    assert [c for c in runtime.calls if c[0] == "run"] == [("run", "berth-web-dep_new-1")]


async def _done(tmp_path: Path, deployment_id: str) -> bool:
    return bool(journal_file(tmp_path, deployment_id)["state"] == "finished")


async def test_journal_refuses_unsafe_ids_and_keeps_no_secret(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        with pytest.raises(InvalidMessage):
            await manager.accept(make_plan("../../etc"))
        await manager.accept(make_plan())
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")
    text = (tmp_path / "deployments" / "dep_New.json").read_text()
    assert SECRET not in text
    assert not (tmp_path / "etc.json").exists()


async def test_progress_and_result_are_replayed_until_acknowledged(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        # No link: the deployment runs anyway, everything goes to the journal.
        await manager.accept(make_plan())
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")

        first = Outbox()
        await manager.attach(first.send, IdSequence())
        assert isinstance(first.sent[0], Inventory)
        [inventory] = first.of(Inventory)
        assert [d.deployment_id for d in inventory.deployments] == ["dep_New"]
        [container] = inventory.containers
        assert container.serving is True
        lines = [line for p in first.of(DeployProgress) for line in p.lines]
        assert [line.sequence for line in lines] == list(range(1, len(lines) + 1))
        [result] = first.of(DeployResult)
        assert result.outcome == "succeeded"
        assert result.last_sequence == len(lines)
        manager.detach(first.send)

        # Reconnect without an ack: the result comes again.
        second = Outbox()
        await manager.attach(second.send, IdSequence())
        assert [r.deployment_id for r in second.of(DeployResult)] == ["dep_New"]
        await manager.acknowledge("dep_New")

        third = Outbox()
        await manager.attach(third.send, IdSequence())
        assert [type(m) for m in third.sent] == [Inventory]
        assert third.of(Inventory)[0].deployments == []


async def test_live_link_receives_progress_and_result(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        outbox = Outbox()
        await manager.attach(outbox.send, IdSequence())
        await manager.accept(make_plan())

        async def result_sent() -> bool:
            return bool(outbox.of(DeployResult))

        await eventually(result_sent, what="deploy_result")
        events = [line.event for p in outbox.of(DeployProgress) for line in p.lines]
        assert "traffic-switched" in events
        # Every line was flushed before the result (the journal is written first).
        [result] = outbox.of(DeployResult)
        sequences = {line.sequence for p in outbox.of(DeployProgress) for line in p.lines}
        assert max(sequences) == result.last_sequence


async def test_cancel_gives_canceled_result_and_keeps_old(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    old_id = seed_old(runtime)
    probing = asyncio.Event()

    async def hang(port: int, health: HealthSpec) -> tuple[bool, str]:
        probing.set()
        await asyncio.Event().wait()
        return True, ""

    async with running(make_manager(runtime, edge, tmp_path, hang)) as manager:
        outbox = Outbox()
        await manager.attach(outbox.send, IdSequence())
        deploys = DeploymentFeature(manager)
        await manager.accept(make_plan())
        await asyncio.wait_for(probing.wait(), 5)
        await deploys.handle(DeployCancel(id=5, deployment_id="dep_New"), outbox.send, IdSequence())
        [ack] = outbox.of(DeployCancelAck)
        assert (ack.re, ack.state) == (5, "canceling")

        async def result_sent() -> bool:
            return bool(outbox.of(DeployResult))

        await eventually(result_sent, what="deploy_result")
        assert outbox.of(DeployResult)[0].outcome == "canceled"
        assert list(runtime.containers) == [old_id]
        await deploys.handle(DeployCancel(id=6, deployment_id="dep_New"), outbox.send, IdSequence())
        await deploys.handle(
            DeployCancel(id=7, deployment_id="dep_Other"), outbox.send, IdSequence()
        )
        assert [a.state for a in outbox.of(DeployCancelAck)] == [
            "canceling",
            "finished",
            "unknown",
        ]


async def test_restart_mid_deploy_removes_unswitched_candidate(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    old_id = seed_old(runtime)
    candidate = runtime.add(
        RunSpec(
            name="berth-web-dep_new-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_New",
            },
            ports=(8080,),
        )
    )
    old_port = runtime.containers[old_id].host_ports[8080]
    edge.routes["res_1"] = (["web.localhost"], [f"127.0.0.1:{old_port}"])
    await Journal(tmp_path).save(JournalEntry.for_plan(make_plan()))
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        assert await manager.accept(make_plan()) == (True, "failed")
    assert candidate.container_id not in runtime.containers
    assert old_id in runtime.containers
    entry = journal_file(tmp_path, "dep_New")
    assert entry["state"] == "finished"
    assert entry["outcome"] == "failed"
    assert entry["error"]["message"] == "the agent restarted during the deployment"
    assert entry["error"]["details"] == {"reasonCode": "agent-restarted"}


async def test_restart_after_switch_counts_as_succeeded(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    candidate = runtime.add(
        RunSpec(
            name="berth-web-dep_new-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_New",
                "berth.hostnames": "web.localhost",
            },
            ports=(8080,),
        )
    )
    port = candidate.host_ports[8080]
    edge.routes["res_1"] = (["web.localhost"], [f"127.0.0.1:{port}"])
    await Journal(tmp_path).save(JournalEntry.for_plan(make_plan()))
    async with running(make_manager(runtime, edge, tmp_path)):
        pass
    assert candidate.container_id in runtime.containers
    assert journal_file(tmp_path, "dep_New")["outcome"] == "succeeded"


async def test_routes_are_restored_on_start(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    container = runtime.add(
        RunSpec(
            name="berth-web-dep_a-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_A",
                "berth.hostnames": "web.localhost,www.localhost",
            },
            ports=(8080,),
        )
    )
    async with running(make_manager(runtime, edge, tmp_path)):
        pass
    assert edge.routes["res_1"] == (
        ["web.localhost", "www.localhost"],
        [f"127.0.0.1:{container.host_ports[8080]}"],
    )


async def test_the_deployment_feature_answers_deployment_requests(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    seed_old(runtime)
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        outbox = Outbox()
        deploys = DeploymentFeature(manager)
        plan = make_plan().model_copy(update={"id": 11})
        await deploys.handle(plan, outbox.send, IdSequence())
        [accepted] = outbox.of(DeployAccepted)
        assert (accepted.re, accepted.deployment_id, accepted.already_known) == (
            11,
            "dep_New",
            False,
        )
        assert accepted.accepted_at == manager.accepted_at("dep_New") is not None
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")
        await deploys.handle(
            DeployResultAck(id=12, re=1, deployment_id="dep_New"), outbox.send, IdSequence()
        )
        assert journal_file(tmp_path, "dep_New")["acked"] is True

        await deploys.handle(
            RuntimeControl(id=13, resource_id="res_1", operation="stop"), outbox.send, IdSequence()
        )
        [control] = outbox.of(RuntimeControlResult)
        assert control.status == "succeeded"
        assert [c.state for c in control.containers] == ["exited"]

        await deploys.handle(ResourceProbe(id=14, resource_id="res_1"), outbox.send, IdSequence())
        [probe] = outbox.of(ResourceProbeResult)
        assert probe.re == 14
        assert [c.deployment_id for c in probe.containers] == ["dep_New"]
        # Stopped above: the runtime check says so; no HTTP check was asked for.
        assert [(c.name, c.status, c.reason_code, c.status_code) for c in probe.checks] == [
            ("runtime", "failed", "runtime-not-running", None)
        ]
        assert not outbox.of(ErrorMessage)


async def test_an_agent_without_the_deployment_feature_refuses_deploy_frames(
    tmp_path: Path,
) -> None:
    outbox = Outbox()
    link = LinkContext(send=outbox.send, ids=IdSequence())
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, features=[], link=link)
    # No feature takes the frame, so the link's dispatcher answers it.
    assert not dispatcher.deliver(make_plan())
    await dispatcher.handle(make_plan(), outbox.send)
    [reply] = outbox.sent
    assert isinstance(reply, ErrorMessage)
    assert reply.error.code == "unknown_type"


async def test_deploy_frames_reach_the_feature_through_the_link_seam(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    seed_old(runtime)
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        outbox = Outbox()
        link = LinkContext(send=outbox.send, ids=IdSequence())
        deploys = DeploymentFeature(manager)
        assert deploys.capabilities == ["deploy.v1"]
        dispatcher = Dispatcher(runtime, tmp_path, features=[deploys], link=link)
        # Attaching sends the inventory before anything else on the link.
        await deploys.attached(link)
        assert [type(m).__name__ for m in outbox.sent] == ["Inventory"]
        plan = make_plan().model_copy(update={"id": 21})
        assert dispatcher.deliver(plan)  # taken without blocking; answered in its own task

        async def accepted() -> bool:
            return bool(outbox.of(DeployAccepted))

        await eventually(accepted, what="deploy_accepted")
        assert outbox.of(DeployAccepted)[0].re == 21
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")
        deploys.detached(link)


async def test_agent_stop_mid_deploy_is_settled_on_next_start(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    old_id = seed_old(runtime)
    probing = asyncio.Event()

    async def hang(port: int, health: HealthSpec) -> tuple[bool, str]:
        probing.set()
        await asyncio.Event().wait()
        return True, ""

    async with running(make_manager(runtime, edge, tmp_path, hang)) as manager:
        await manager.accept(make_plan())
        await asyncio.wait_for(probing.wait(), 5)
    # Stopped mid-deployment: no outcome was invented, the journal still says running.
    assert journal_file(tmp_path, "dep_New")["state"] == "running"
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        outbox = Outbox()
        await manager.attach(outbox.send, IdSequence())
        [result] = outbox.of(DeployResult)
        assert result.outcome == "failed"
        assert result.error is not None
        assert result.error.details == {"reasonCode": "agent-restarted"}
    assert list(runtime.containers) == [old_id]


async def test_routes_follow_new_host_ports_without_needless_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent.deployments.ROUTE_CHECK_SECONDS", 0.02)
    runtime, edge = make_runtime(), FakeEdge()
    container = runtime.add(
        RunSpec(
            name="berth-web-dep_a-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_A",
                "berth.hostnames": "web.localhost",
            },
            ports=(8080,),
        )
    )
    async with running(make_manager(runtime, edge, tmp_path)):
        assert edge.calls == [("switch", f"127.0.0.1:{container.host_ports[8080]}")]
        checked = runtime.listings

        async def checked_again() -> bool:
            # Each periodic check lists the containers twice (all, then the resource's).
            return runtime.listings >= checked + 6

        await eventually(checked_again, what="three more periodic route checks")
        assert len(edge.calls) == 1  # unchanged routes are not rewritten
        container.host_ports[8080] = 45678  # e.g. Docker restarted the container

        async def moved() -> bool:
            return edge.routes["res_1"][1] == ["127.0.0.1:45678"]

        await eventually(moved, what="route follows the new port")
        # An edge that does not know the bindings of a route it holds (Caddy keeps names, not
        # which binding each is): the next check sets the same route again, so it learns them.
        switched = len(edge.calls)
        edge.unknown_bindings.add("res_1")

        async def relearnt() -> bool:
            return edge.bindings_known("res_1")

        await eventually(relearnt, what="the route set again for its bindings")
        assert len(edge.calls) == switched + 1
        assert edge.routes["res_1"][1] == ["127.0.0.1:45678"]


async def test_routes_follow_engine_events_without_waiting_for_the_periodic_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent.deployments.ROUTE_CHECK_SECONDS", 3600.0)
    runtime, edge = make_runtime(), FakeEdge()
    container = runtime.add(
        RunSpec(
            name="berth-web-dep_a-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_A",
                "berth.hostnames": "web.localhost",
            },
            ports=(8080,),
        )
    )
    async with running(make_manager(runtime, edge, tmp_path)):
        assert edge.routes["res_1"][1] == [f"127.0.0.1:{container.host_ports[8080]}"]

        container.state = "exited"
        runtime.announce(container, "die")

        async def stopped() -> bool:
            return edge.routes["res_1"][1] == []  # the edge answers 503 "stopped"

        await eventually(stopped, what="the stopped resource's route")

        container.state, container.host_ports[8080] = "running", 45679
        runtime.announce(container, "start")

        async def moved() -> bool:
            return edge.routes["res_1"][1] == ["127.0.0.1:45679"]

        await eventually(moved, what="route follows the restarted container's port")

        del runtime.containers[container.container_id]
        runtime.announce(container, "destroy")

        async def removed() -> bool:
            return "res_1" not in edge.routes

        await eventually(removed, what="the removed resource's route to go")


def test_progress_batches_stay_under_the_frame_limit() -> None:
    now = datetime.now(UTC)
    lines = [
        DeployLogLine(sequence=i, timestamp=now, phase="build", message='"\\' * 4000)
        for i in range(1, 1201)
    ]
    batches = progress_batches(lines)
    assert [line.sequence for batch in batches for line in batch] == list(range(1, 1201))
    for batch in batches:
        frame = dump_json(DeployProgress(id=1, deployment_id="dep_1", lines=batch))
        assert len(frame.encode()) < MAX_FRAME_BYTES
    short = [line.model_copy(update={"message": "x"}) for line in lines]
    assert [len(b) for b in progress_batches(short)] == [500, 500, 200]


async def test_switch_is_journaled_so_restart_keeps_candidates_without_caddy(
    tmp_path: Path,
) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    seed_old(runtime)
    plan = make_plan(drainSeconds=600)
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        await manager.accept(plan)

        async def switched() -> bool:
            return bool(journal_file(tmp_path, "dep_New")["switched"])

        await eventually(switched, what="switch journaled")
    # The agent stopped during the drain, and at the next start Caddy is unreachable.
    edge.fail = "edge proxy admin API unreachable"
    async with running(make_manager(runtime, edge, tmp_path)):
        pass
    assert journal_file(tmp_path, "dep_New")["outcome"] == "succeeded"
    assert "berth-web-dep_new-1" in [c.spec.name for c in runtime.containers.values()]


async def test_replay_carries_the_agents_own_acceptance_and_finish_times(tmp_path: Path) -> None:
    runtime, edge = make_runtime(), FakeEdge()
    before = datetime.now(UTC)
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        await manager.accept(make_plan())
        accepted_at = manager.accepted_at("dep_New")
        assert accepted_at is not None
        assert before <= accepted_at
        await eventually(lambda: _done(tmp_path, "dep_New"), what="deployment finished")
    # Restarted: the times come from the journal, not from the replay's clock.
    async with running(make_manager(runtime, edge, tmp_path)) as manager:
        assert manager.accepted_at("dep_New") == accepted_at
        outbox = Outbox()
        await manager.attach(outbox.send, IdSequence())
    [inventory] = outbox.of(Inventory)
    assert [(d.state, d.accepted_at) for d in inventory.deployments] == [("finished", accepted_at)]
    lines = [line for p in outbox.of(DeployProgress) for line in p.lines]
    [result] = outbox.of(DeployResult)
    assert result.started_at == accepted_at
    assert result.finished_at == datetime.fromisoformat(
        journal_file(tmp_path, "dep_New")["finishedAt"]
    )
    assert accepted_at <= min(line.timestamp for line in lines)
    assert max(line.timestamp for line in lines) <= result.finished_at
    # The order a coordinator stores them in: every line, then the outcome.
    kinds = [type(m) for m in outbox.sent]
    assert kinds.index(DeployResult) > max(i for i, k in enumerate(kinds) if k is DeployProgress)
