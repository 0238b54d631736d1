"""Sample ingest: dedupe, ack after commit, refusal when behind, attribution, observers."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from coordinator.db import models
from coordinator.db.monitoring_models import RuntimeSample
from coordinator.hub.session import AgentSession
from coordinator.ids import new_id
from coordinator.monitoring.service import MONITORING_KEY, MonitoringService
from shared.errors import ErrorCode
from shared.messages import ErrorMessage
from shared.messages.monitoring import Sample, SampleBatch, SamplesAck
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def make_sample(
    observed_at: datetime,
    *,
    busy: float = 10.0,
    used: int = 1000,
    containers: list[dict[str, Any]] | None = None,
    sequence: int = 1,
    interval: float = 5.0,
    sample_id: str | None = None,
) -> Sample:
    """A sample with every signal filled; ``busy``/``used`` vary what tests look at."""
    return Sample.model_validate(
        {
            "sampleId": sample_id or uuid.uuid4().hex,
            "sequence": sequence,
            "observedAt": observed_at,
            "intervalSeconds": interval,
            "totals": {
                "cpu": {
                    "logicalCores": 2,
                    "load_average1m": 0.5,  # by name: the wire alias is "loadAverage1M"
                    "load_average5m": 0.4,
                    "load_average15m": 0.3,
                    "busyPercent": busy,
                    "containerCpuPercent": sum(c.get("cpuPercent", 0) for c in containers or []),
                },
                "memory": {
                    "totalBytes": 8000,
                    "usedBytes": used,
                    "availableBytes": 8000 - used,
                    "containerUsedBytes": 0,
                },
                "disk": {
                    "totalBytes": 100,
                    "usedBytes": 40,
                    "availableBytes": 60,
                    "attributedBytes": 0,
                },
                "inode": {"total": 10, "used": 1, "available": 9},
                "docker": {"imageBytes": 5, "buildCacheBytes": 0, "containerWritableBytes": 0},
                "network": {"rxBytes": 100, "txBytes": 50},
            },
            "containers": containers or [],
        }
    )


def container(resource: dict[str, str] | None, cpu: float, memory: int = 100) -> dict[str, Any]:
    """A container usage entry attributed to ``resource`` (ids dict) or unmanaged."""
    return {
        "containerId": uuid.uuid4().hex,
        "name": "c",
        "cpuPercent": cpu,
        "memoryBytes": memory,
        "rxBytes": 10,
        "txBytes": 20,
        **(resource or {}),
    }


async def make_resource(coordinator: Coordinator, token: str, name: str) -> dict[str, str]:
    """A project, environment and resource; returns the attribution ids of its containers."""
    project_id = await create_project(coordinator, token, name)
    environment_id = await create_environment(coordinator, token, project_id)
    resource = await models.Resource.create(
        id=new_id("res"),
        project_id=project_id,
        environment_id=environment_id,
        name="web",
        slug="web",
        source={"kind": "docker-image", "imageName": "busybox", "imageTag": "latest"},
        network_profile={"internalPort": 8080},
        created_at=datetime.now(UTC),
    )
    return {"projectId": project_id, "environmentId": environment_id, "resourceId": resource.id}


def service_of(coordinator: Coordinator) -> MonitoringService:
    """The running app's monitoring service."""
    assert coordinator._runner is not None
    return coordinator._runner.app[MONITORING_KEY]


async def connected_agent(coordinator: Coordinator, token: str, name: str) -> FakeAgent:
    """An enrolled and connected fake agent."""
    agent = await FakeAgent.enroll(coordinator, token, name)
    await agent.connect()
    return agent


async def send_batch(agent: FakeAgent, samples: list[Sample]) -> int:
    """Send one ``samples`` frame; return its id."""
    frame_id = agent.next_id()
    await agent.send(SampleBatch(id=frame_id, samples=samples))
    return frame_id


async def test_batch_is_stored_once_and_acknowledged_with_duplicates(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "ingest-1")
    samples = [make_sample(START + timedelta(seconds=5 * i), sequence=i + 1) for i in range(3)]
    first = await send_batch(agent, samples)
    ack = await agent.expect(SamplesAck)
    assert (ack.re, ack.stored, ack.duplicates) == (first, 3, 0)

    # Resent after a lost ack, plus one new sample and a repeat inside the same frame.
    extra = make_sample(START + timedelta(seconds=15), sequence=4)
    second = await send_batch(agent, [*samples, extra, extra])
    ack = await agent.expect(SamplesAck)
    assert (ack.re, ack.stored, ack.duplicates) == (second, 1, 4)

    rows = await RuntimeSample.filter(server_id=agent.server_id).order_by("sequence")
    assert [r.sample_id for r in rows] == [s.sample_id for s in [*samples, extra]]
    assert rows[0].totals["cpu"]["busyPercent"] == 10.0  # type: ignore[index]
    await agent.close()


async def test_ack_comes_only_after_commit(
    coordinator: Coordinator, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await connected_agent(coordinator, admin_token, "ingest-2")
    service = service_of(coordinator)
    original = service.insert
    failures = 0

    async def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        failures += 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "insert", failing)
    samples = [make_sample(START, sequence=1)]
    await send_batch(agent, samples)

    async def failed() -> bool:
        return failures == 1

    await eventually(failed, timeout=5, what="a failed write")
    await asyncio.sleep(scaled(0.3))  # a stray ack would have arrived by now (linger is 0.2 s)
    assert agent.count(SamplesAck) == 0
    assert await RuntimeSample.filter(server_id=agent.server_id).count() == 0

    monkeypatch.setattr(service, "insert", original)
    frame_id = await send_batch(agent, samples)  # the agent's spool resends
    ack = await agent.expect(SamplesAck)
    assert (ack.re, ack.stored) == (frame_id, 1)
    # When the ack is out, the row is durable and visible to any reader.
    assert await RuntimeSample.filter(sample_id=samples[0].sample_id).count() == 1
    await agent.close()


async def test_batches_are_refused_retriably_when_the_writer_is_behind(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "ingest-3")
    service = service_of(coordinator)
    service.queue_bound = 2
    frame_id = await send_batch(
        agent, [make_sample(START + timedelta(seconds=i)) for i in range(3)]
    )
    error = await agent.expect(ErrorMessage)
    assert error.re == frame_id
    assert error.error.code == ErrorCode.UNAVAILABLE
    assert error.error.retriable is True
    assert await RuntimeSample.filter(server_id=agent.server_id).count() == 0
    assert agent.count(SamplesAck) == 0
    await agent.close()


async def test_attribution_is_trusted_only_for_the_servers_own_organization(
    coordinator: Coordinator, admin_token: str
) -> None:
    ids = await make_resource(coordinator, admin_token, "attr")
    agent = await connected_agent(coordinator, admin_token, "ingest-4")
    other_org = await models.Organization.create(
        id=new_id("org"), name="other", slug="other", created_at=datetime.now(UTC)
    )
    foreign_project = await models.Project.create(
        id=new_id("prj"), organization=other_org, name="x", slug="x", created_at=datetime.now(UTC)
    )
    wrong_project = {**ids, "projectId": foreign_project.id}
    sample = make_sample(
        START,
        containers=[
            container(ids, 50.0),
            container({"resourceId": ids["resourceId"]}, 5.0),  # labels gave only the resource
            container(wrong_project, 7.0),
            container({"resourceId": "res_unknown"}, 9.0),
            container(None, 1.0),
        ],
    )
    await send_batch(agent, [sample])
    _ = await agent.expect(SamplesAck)
    row = await RuntimeSample.get(sample_id=sample.sample_id)
    trusted = [c["attributionTrusted"] for c in row.containers]
    assert trusted == [True, True, False, False, False]
    # Ids are kept as reported; the missing project/environment are filled for trusted ones.
    assert row.containers[1]["projectId"] == ids["projectId"]
    assert row.containers[2]["projectId"] == foreign_project.id
    assert row.containers[3]["resourceId"] == "res_unknown"
    assert row.server_id == agent.server_id
    await agent.close()


async def test_observers_see_new_samples_after_commit_and_failures_are_not_fatal(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "ingest-5")
    seen: list[tuple[str, list[str], int]] = []

    async def broken(server_id: str, samples: list[Sample]) -> None:
        raise RuntimeError("observer bug")

    async def recording(server_id: str, samples: list[Sample]) -> None:
        stored = await RuntimeSample.filter(sample_id__in=[s.sample_id for s in samples]).count()
        seen.append((server_id, [s.sample_id for s in samples], stored))

    service = service_of(coordinator)
    service.add_observer(broken)
    service.add_observer(recording)
    sample = make_sample(START)
    await send_batch(agent, [sample])
    _ = await agent.expect(SamplesAck)
    await send_batch(agent, [sample])  # a duplicate is not "new"
    _ = await agent.expect(SamplesAck)

    async def observed() -> bool:
        return len(seen) >= 1

    await eventually(observed, timeout=5, what="the observer call")
    assert seen == [(agent.server_id, [sample.sample_id], 1)]
    await agent.close()


async def test_an_observer_gets_only_the_samples_it_wanted_on_arrival(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "ingest-6")
    seen: list[str] = []
    asked: list[str] = []

    async def recording(server_id: str, samples: list[Sample]) -> None:
        seen.extend(s.sample_id for s in samples)

    def wants(server_id: str, samples: list[Sample]) -> bool:
        asked.extend(s.sample_id for s in samples)
        return any(s.sequence % 2 == 0 for s in samples)  # batches holding an even one

    # A service of its own: the coordinator's has the threshold evaluator as an observer too.
    service = MonitoringService()
    service.add_observer(recording, wants)
    closed = SimpleNamespace(closed=True)  # no acks: the agent here is only the server's row
    session = cast(AgentSession, SimpleNamespace(server_id=agent.server_id, ws=closed))
    unwanted = make_sample(START, sequence=1)
    wanted = make_sample(START + timedelta(seconds=15), sequence=2)
    for frame_id, sample in enumerate((unwanted, wanted), 1):
        await service.on_message(session, SampleBatch(id=frame_id, samples=[sample]))
    await service.write([service._queue.get_nowait() for _ in range(2)])
    await service.observe_pending()
    assert asked == [unwanted.sample_id, wanted.sample_id]
    assert seen == [wanted.sample_id]  # the unwanted sample is stored but not handed over
    assert await RuntimeSample.filter(sample_id=unwanted.sample_id).exists()
    await agent.close()
