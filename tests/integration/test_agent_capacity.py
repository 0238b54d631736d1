"""Monitoring against real Docker, driven in-process: cgroup CPU and attribution, inspect, prune."""

import asyncio
import contextlib
import itertools
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from agent.monitoring.capacity import Inspector
from agent.monitoring.engine import DockerEngine
from agent.monitoring.prune import Pruner
from agent.monitoring.sampler import DockerDiskCache, Sampler
from agent.monitoring.spool import SPOOL_FILE
from agent.runtime.docker import DockerRuntime
from shared.messages.monitoring import CapacityPrune, ContainerUsage
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, eventually
from tests.integration.stacks import start_agent

pytestmark = pytest.mark.docker
TEST_IMAGE = "berth-test/busybox:latest"
CASE_LABEL = "berth.test-case"


@pytest.fixture
def case() -> str:
    """A label value that confines the engine (and so the prune) to this test's containers."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def engine(case: str) -> AsyncIterator[DockerEngine]:
    runtime = DockerRuntime(extra_labels={})
    loop = asyncio.get_running_loop()
    yield DockerEngine(runtime, loop, only_label=f"{CASE_LABEL}={case}")
    await runtime.close()


def labels(case: str, resource: str, deployment: str) -> dict[str, str]:
    return {
        TEST_LABEL: TEST_SESSION,
        CASE_LABEL: case,
        "berth.managed": "true",
        "berth.project-id": "prj_cap",
        "berth.environment-id": "env_cap",
        "berth.resource-id": resource,
        "berth.deployment-id": deployment,
    }


async def test_busy_container_shows_cpu_and_attribution(
    docker_client: docker.DockerClient, engine: DockerEngine, case: str
) -> None:
    busy = docker_client.containers.run(
        TEST_IMAGE,
        ["sh", "-c", "while :; do :; done"],
        detach=True,
        labels=labels(case, "res_busy", "dep_busy"),
    )
    idle = docker_client.containers.run(
        TEST_IMAGE,
        ["sleep", "600"],
        detach=True,
        labels={TEST_LABEL: TEST_SESSION, CASE_LABEL: case},
    )
    disk = DockerDiskCache(engine)
    await asyncio.to_thread(disk.refresh)
    sampler = Sampler(engine, disk)
    await asyncio.to_thread(sampler.collect)
    found: dict[str, ContainerUsage] = {}

    async def busy_seen() -> bool:
        await asyncio.sleep(0.5)  # let CPU time accumulate between two readings
        reading = await asyncio.to_thread(sampler.collect)
        found.clear()
        found.update({c.container_id: c for c in reading.containers})
        usage = found.get(busy.id or "")
        return usage is not None and usage.cpu_percent > 50

    await eventually(busy_seen, timeout=20, what="the busy container above 50 % CPU")
    usage = found[busy.id or ""]
    assert usage.project_id == "prj_cap"
    assert usage.environment_id == "env_cap"
    assert usage.resource_id == "res_busy"
    assert usage.deployment_id == "dep_busy"
    assert usage.memory_bytes > 0
    assert usage.pids is not None
    assert usage.pids >= 1
    assert usage.cpu_percent < 250  # two cores at most on any sane reading of one shell loop
    unmanaged = found[idle.id or ""]
    assert unmanaged.resource_id is None
    assert unmanaged.cpu_percent < 20


async def test_inspect_lists_managed_containers_with_writable_size(
    docker_client: docker.DockerClient, engine: DockerEngine, case: str, tmp_path: Path
) -> None:
    running = docker_client.containers.run(
        TEST_IMAGE,
        ["sh", "-c", "head -c 300000 /dev/zero > /payload; sleep 600"],
        detach=True,
        labels=labels(case, "res_i", "dep_i"),
    )

    async def payload_written() -> bool:
        result = await asyncio.to_thread(running.exec_run, ["ls", "/payload"])
        return result.exit_code == 0

    await eventually(payload_written, what="payload written")
    report = await asyncio.to_thread(
        Inspector(engine, tmp_path, DockerDiskCache(engine)).inspect, 1, 2
    )
    assert not report.partial
    assert report.docker is not None
    [container] = report.containers
    assert container.id == running.id
    assert container.running
    assert container.serving
    assert container.writable_bytes is not None
    assert container.writable_bytes >= 300000
    assert report.disk
    assert report.runtime_directories["stateRoot"].detectable


async def test_prune_dry_run_then_real_never_running_nor_volumes(
    docker_client: docker.DockerClient, engine: DockerEngine, case: str, tmp_path: Path
) -> None:
    volume = docker_client.volumes.create(
        name=f"berth-test-{case}", labels={TEST_LABEL: TEST_SESSION, CASE_LABEL: case}
    )
    try:
        old = docker_client.containers.run(
            TEST_IMAGE,
            ["true"],
            detach=True,
            labels=labels(case, "res_p", "dep_old"),
            volumes={volume.name: {"bind": "/data", "mode": "rw"}},
        )
        await asyncio.to_thread(old.wait, timeout=30)
        serving = docker_client.containers.run(
            TEST_IMAGE, ["sleep", "600"], detach=True, labels=labels(case, "res_p", "dep_new")
        )
        pruner = Pruner(engine, tmp_path)

        dry = await asyncio.to_thread(
            pruner.prune, CapacityPrune(id=1, categories=["stopped-containers"]), 5
        )
        assert [(c.id, c.action) for c in dry.candidates] == [(old.id, "matched")]
        docker_client.containers.get(old.id or "")  # still there

        real = await asyncio.to_thread(
            pruner.prune,
            CapacityPrune(id=2, categories=["stopped-containers"], dry_run=False),
            6,
        )
        assert [(c.id, c.action) for c in real.candidates] == [(old.id, "pruned")]
        assert real.pruned_count == 1
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(old.id or "")
        serving.reload()
        assert serving.status == "running"
        assert docker_client.volumes.get(volume.name).name == volume.name
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"{CASE_LABEL}={case}"}
        ):
            container.remove(force=True)
        volume.remove(force=True)


async def test_prune_protects_rollback_candidates_and_a_stopped_resource(
    docker_client: docker.DockerClient, engine: DockerEngine, case: str, tmp_path: Path
) -> None:
    candidate = docker_client.containers.create(
        TEST_IMAGE, ["true"], labels=labels(case, "res_r", "dep_rb")
    )
    await asyncio.sleep(1.1)  # Docker's list shows creation times in whole seconds
    # The resource was stopped on purpose: its newest deployment must survive a prune.
    stopped_current = docker_client.containers.create(
        TEST_IMAGE, ["true"], labels=labels(case, "res_r", "dep_cur")
    )
    result = await asyncio.to_thread(
        Pruner(engine, tmp_path).prune,
        CapacityPrune(
            id=1,
            categories=["stopped-containers"],
            dry_run=False,
            protected_deployment_ids=["dep_rb"],
        ),
        2,
    )
    actions = {c.id: (c.action, c.skipped_reason) for c in result.candidates}
    assert actions == {
        candidate.id: ("skipped", "rollback-candidate"),
        stopped_current.id: ("skipped", "active-runtime"),
    }
    docker_client.containers.get(candidate.id or "")
    docker_client.containers.get(stopped_current.id or "")


async def test_real_agent_delivers_samples_and_answers_capacity(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    case: str,
) -> None:
    old = docker_client.containers.create(
        TEST_IMAGE, ["true"], labels=labels(case, "res_e2e", "dep_old")
    )
    await asyncio.sleep(1.1)  # Docker's list shows creation times in whole seconds
    serving = docker_client.containers.run(
        TEST_IMAGE, ["sleep", "600"], detach=True, labels=labels(case, "res_e2e", "dep_new")
    )
    agent, server_id = await start_agent(
        coordinator, admin_token, tmp_path / "agent", env={"BERTH_AGENT_SAMPLE_SECONDS": "1"}
    )
    try:

        async def samples_stored() -> bool:
            status, answer, _ = await coordinator.call(
                "GET",
                f"/runtime-monitoring/samples?scopeKind=server&serverId={server_id}",
                token=admin_token,
            )
            assert status == 200, answer
            return len(answer["samples"]) >= 3

        await eventually(samples_stored, timeout=30, what="samples stored by the coordinator")

        status, capacity, _ = await coordinator.call(
            "GET", f"/servers/{server_id}/capacity", token=admin_token
        )
        assert status == 200, capacity
        listed = {c["id"]: c for c in capacity["appaloftContainers"]}
        assert listed[serving.id]["running"] is True
        assert listed[serving.id]["deploymentId"] == "dep_new"
        assert listed[old.id]["running"] is False
        assert capacity["disk"]

        status, dry, _ = await coordinator.call(
            "POST",
            f"/servers/{server_id}/capacity/prune",
            token=admin_token,
            json={"categories": ["stopped-containers"]},
        )
        assert status == 200, dry
        assert dry["dryRun"] is True
        actions = {c["id"]: c["action"] for c in dry["candidates"]}
        assert actions.get(old.id) == "matched"
        assert serving.id not in actions
        docker_client.containers.get(old.id or "")  # a dry run removed nothing
    finally:
        await agent.stop()


async def test_coordinator_outage_leaves_no_gap_and_no_duplicate(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    state_dir = tmp_path / "agent"
    agent, server_id = await start_agent(
        coordinator, admin_token, state_dir, env={"BERTH_AGENT_SAMPLE_SECONDS": "1"}
    )
    path = f"/runtime-monitoring/samples?scopeKind=server&serverId={server_id}&limit=720"
    try:

        async def stored() -> list[dict[str, Any]]:
            status, answer, _ = await coordinator.call("GET", path, token=admin_token)
            assert status == 200, answer
            return list(answer["samples"])

        async def some_stored() -> bool:
            return len(await stored()) >= 2

        await eventually(some_stored, timeout=30, what="first samples stored")
        await coordinator.stop()

        def spooled() -> int:
            with contextlib.closing(sqlite3.connect(state_dir / SPOOL_FILE)) as db:
                return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

        async def outage_spooled() -> bool:
            return await asyncio.to_thread(spooled) >= 3

        await eventually(outage_spooled, timeout=30, what="samples spooled during the outage")
        await coordinator.start()

        async def delivered() -> bool:
            return await asyncio.to_thread(spooled) == 0 and len(await stored()) >= 6

        await eventually(delivered, timeout=60, what="the spool delivered after reconnect")
        samples = await stored()
        ids = [s["sampleId"] for s in samples]
        assert len(ids) == len(set(ids))
        observed = sorted(datetime.fromisoformat(s["observedAt"]) for s in samples)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(observed)]
        # One sample a second on a fixed grid: an outage must not leave a hole.
        assert max(gaps) < 2.5, gaps
    finally:
        await agent.stop()
