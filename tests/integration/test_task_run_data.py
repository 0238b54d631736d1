"""Task runs get the resource's data: a real agent runs each one-off task in a fresh container
with the serving deployment's storage volumes (bind mounts checked against the agent's allowed
roots, as for deployments) and its dependency bindings (the database's private network and
``DATABASE_URL``); a coordinator never hands such a run to an agent that cannot honour them."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.scheduling import SCHEDULER_KEY
from shared.messages.tasks import TASKS_CAPABILITY
from tests.db_images import db_images
from tests.harness import Coordinator, eventually, serving
from tests.integration.stacks import (
    Workload,
    dependency_images,
    remove_session_objects,
    workload,
)

pytestmark = pytest.mark.docker

# The app writes a note to its volume, then serves (sleeps).
WRITE_NOTE = "echo written-by-the-app > /data/note; sleep 100000"
FINISHED = {"succeeded", "failed", "skipped", "canceled"}


@pytest.fixture
def images() -> dict[str, str]:
    return db_images("postgres")


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, images: dict[str, str]
) -> AsyncIterator[Coordinator]:
    """A coordinator whose dependency kinds run the locally built images."""
    async with serving(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, **dependency_images(images)
    ) as harness:
        yield harness


async def _one_off(stack: Workload, command: str) -> tuple[dict[str, Any], list[str]]:
    """Run ``command`` as a one-off task; its finished run and its output lines."""
    answer = await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/one-off-runs",
        {"commandIntent": command, "timeoutSeconds": 60},
    )
    run_id = answer["run"]["runId"]

    async def finished() -> bool:
        shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
        return shown["run"]["status"] in FINISHED

    await eventually(finished, timeout=90, what=f"task run {run_id} to finish")
    run = (await stack.call("GET", f"/scheduled-task-runs/{run_id}"))["run"]
    logs = await stack.call("GET", f"/scheduled-task-runs/{run_id}/logs")
    return dict(run), [str(e["message"]) for e in logs["entries"]]


async def _attach(stack: Workload, **volume: Any) -> str:
    created = await stack.call(
        "POST",
        "/storage-volumes",
        {"projectId": stack.project_id, "environmentId": stack.environment_id, **volume},
    )
    await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/storage-attachments",
        {"storageVolumeId": created["id"], "destinationPath": "/data"},
    )
    return str(created["id"])


async def test_a_task_run_reads_and_writes_the_volume_of_the_serving_deployment(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITE_NOTE)
    try:
        await _attach(stack, name="files", kind="named-volume")
        await stack.deploy()
        (serving,) = stack.containers(docker_client)

        async def written() -> bool:
            code, _ = serving.exec_run(["cat", "/data/note"])
            return bool(code == 0)

        await eventually(written, what="the app to write its note")

        run, lines = await _one_off(stack, "cat /data/note; echo from-the-task > /data/reply")
        assert (run["status"], run["exitCode"]) == ("succeeded", 0), run
        assert lines == ["written-by-the-app"]
        # The same volume, read-write: the serving container sees what the task wrote.
        code, out = serving.exec_run(["cat", "/data/reply"])
        assert (code, out.decode()) == (0, "from-the-task\n")
        # The task's container is gone; the volume (the app's data) is not.
        assert _task_containers(docker_client, stack) == []
        assert serving.exec_run(["cat", "/data/note"])[0] == 0

        # An agent that does not say ``tasks.data.v1`` would run it without the volume: the
        # run fails with the reason and no container is made.
        scheduler = coordinator.app[SCHEDULER_KEY]
        scheduler._capabilities[stack.server_id] = frozenset({TASKS_CAPABILITY})
        try:
            run, lines = await _one_off(stack, "cat /data/note")
        finally:
            scheduler._capabilities[stack.server_id] = frozenset()
        assert run["status"] == "failed", run
        assert run["failureSummary"].startswith("agent-task-data-unsupported:"), run
        assert run["failureCode"] == "agent-unsupported", run
        assert run["startedAt"] is None
        assert lines == []
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


async def test_a_task_runs_bind_mount_is_checked_against_the_agents_roots(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    allowed = tmp_path / "allowed"
    inside = allowed / "app-data"
    stack = await workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        WRITE_NOTE,
        agent_env={"BERTH_AGENT_BIND_MOUNT_ROOTS": str(allowed)},
    )
    try:
        await _attach(stack, name="files", kind="bind-mount", sourcePath=str(inside))
        await stack.deploy()
        run, lines = await _one_off(stack, "cat /data/note")
        assert (run["status"], lines) == ("succeeded", ["written-by-the-app"]), run

        # The same server's agent restarted with narrower roots: the run is refused before any
        # container is made, as a deployment's mount would be.
        await stack.agent.stop()
        narrower = tmp_path / "elsewhere"
        narrower.mkdir()
        stack.agent.env["BERTH_AGENT_BIND_MOUNT_ROOTS"] = str(narrower)
        await stack.agent.start()

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, stack.server_id) == "online"

        await eventually(online, what="the agent back online")
        run, lines = await _one_off(stack, "cat /data/note")
        assert run["status"] == "failed", run
        assert run["failureSummary"].startswith("bind-mount-not-allowed:"), run
        assert run["failureCode"] == "start-failed", run
        assert "outside the agent's allowed roots" in run["failureSummary"]
        assert lines == []
        assert _task_containers(docker_client, stack) == []
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


async def test_a_task_run_reaches_the_bound_database_through_its_variable(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    images: dict[str, str],
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 100000")
    try:
        # The app runs the postgres image (for its psql); its database is a provisioned one.
        await stack.use_image(images["postgres"])
        planned = await stack.call(
            "POST",
            "/dependency-resources/provisioning/plan",
            {
                "mode": "create",
                "create": {
                    "kind": "postgres",
                    "projectId": stack.project_id,
                    "environmentId": stack.environment_id,
                    "name": "Main DB",
                    "serverId": stack.server_id,
                },
            },
        )
        accepted = await stack.call(
            "POST",
            f"/dependency-resources/provisioning/{planned['plan']['id']}/accept",
            {"acknowledgeMutation": True},
        )
        dependency_id = accepted["plan"]["dependencyResourceId"]

        _ = await stack.dependency_ready(dependency_id)
        await stack.bind(dependency_id, "DATABASE_URL")
        await stack.deploy()

        command = 'psql "$DATABASE_URL" -qAt -c "select 40 + 2"'
        run, lines = await _one_off(stack, command)
        assert (run["status"], run["exitCode"]) == ("succeeded", 0), (run, lines)
        assert lines == ["42"]
        # The run joined the database's private network (its host name resolves only there),
        # and the URL, a secret like the deployment's, is masked in the run's output.
        (database,) = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
        env = dict(e.split("=", 1) for e in database.attrs["Config"]["Env"])
        run, lines = await _one_off(stack, 'echo "url=$DATABASE_URL"')
        assert run["status"] == "succeeded", run
        (line,) = lines
        assert line.startswith("url="), line
        assert env["POSTGRES_PASSWORD"] not in line
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


def _task_containers(client: docker.DockerClient, stack: Workload) -> list[Any]:
    """This resource's task-run containers (other tests, or runs beside this one, have theirs)."""
    return list(
        client.containers.list(
            all=True, filters={"label": f"berth.task-resource-id={stack.resource_id}"}
        )
    )
