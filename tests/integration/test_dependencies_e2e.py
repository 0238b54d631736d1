"""Dependency resources end to end: a real agent runs a local PostgreSQL image on a private
network with its own volume; a bound app (psql in a loop) writes rows through DATABASE_URL;
the rows survive the database container's restart; delete is refused while bound and then
removes the container, network and volume."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from tests.db_images import db_images
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, eventually, serving
from tests.integration.stacks import (
    Workload,
    dependency_images,
    remove_session_objects,
    workload,
)
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker

WRITER = (
    'while true; do psql "$DATABASE_URL" -qAt -c \'create table if not exists visits'
    "(id serial primary key, at timestamptz default now()); insert into visits default values'"
    " && echo inserted; sleep 0.5; done"
)


@pytest.fixture
def images() -> dict[str, str]:
    return db_images("postgres", "redis", "mysql")


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, images: dict[str, str]
) -> AsyncIterator[Coordinator]:
    """A coordinator whose dependency kinds run the locally built images."""
    async with serving(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, **dependency_images(images)
    ) as harness:
        yield harness


def _count(client: docker.DockerClient, container: Any, user: str, db: str) -> int:
    code, out = container.exec_run(
        [
            "psql",
            "-h",
            "/run/postgresql",
            "-U",
            user,
            "-d",
            db,
            "-tAc",
            "select count(*) from visits",
        ]
    )
    return int(out.decode().strip()) if code == 0 else -1


async def test_provisioned_postgres_is_bound_written_restarted_and_deleted(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    images: dict[str, str],
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        await _scenario(stack, docker_client, images["postgres"])
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


async def _scenario(stack: Workload, client: docker.DockerClient, image: str) -> None:
    await stack.use_image(image)
    body = {
        "mode": "create",
        "create": {
            "kind": "postgres",
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "name": "Main DB",
            "serverId": stack.server_id,
        },
    }
    planned = await stack.call("POST", "/dependency-resources/provisioning/plan", body)
    plan = planned["plan"]
    assert planned["schemaVersion"] == "dependency-resource-provisioning.plan/v1"
    assert (plan["status"], plan["requiresAcceptance"], plan["dependencyResourceId"]) == (
        "planned",
        True,
        None,
    )
    assert not client.containers.list(
        all=True,
        filters={"label": ["berth.dependency-resource-id", f"{TEST_LABEL}={TEST_SESSION}"]},
    )
    status, refused, _ = await stack.coordinator.call(
        "POST",
        f"/dependency-resources/provisioning/{plan['id']}/accept",
        token=stack.token,
        json={"acknowledgeMutation": False},
    )
    assert status == 400, refused
    accepted = await stack.call(
        "POST",
        f"/dependency-resources/provisioning/{plan['id']}/accept",
        {"acknowledgeMutation": True},
    )
    assert accepted["plan"]["status"] == "accepted"
    dependency_id = accepted["plan"]["dependencyResourceId"]
    item = await stack.dependency_ready(dependency_id)
    assert item["sourceMode"] == "appaloft-managed"
    assert item["providerManaged"] is True
    assert item["providerRealization"]["status"] == "realized"
    shown_plan = await stack.call("GET", f"/dependency-resources/provisioning/{plan['id']}")
    assert shown_plan["plan"]["status"] == "completed"
    assert shown_plan["plan"]["completedAt"] is not None

    # The container: labelled, on its own network with its own volume, not published.
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    attrs = container.attrs
    assert attrs["Config"]["Labels"][TEST_LABEL] == TEST_SESSION
    # Not a deployment container: reconciles and capacity prune must leave it alone.
    assert "berth.managed" not in attrs["Config"]["Labels"]
    assert attrs["HostConfig"]["PortBindings"] in (None, {})
    networks = set(attrs["NetworkSettings"]["Networks"])
    assert networks == {container.name}
    [mount] = attrs["Mounts"]
    assert (mount["Type"], mount["Destination"]) == ("volume", "/var/lib/postgresql/data")
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    password, user, db = env["POSTGRES_PASSWORD"], env["POSTGRES_USER"], env["POSTGRES_DB"]
    assert len(password) >= 32

    # The password never appears in an answer; the masked URL names the host and database.
    listed = await stack.call("GET", f"/dependency-resources?projectId={stack.project_id}")
    shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
    assert password not in json.dumps([listed, shown])
    connection = shown["dependencyResource"]["connection"]
    assert connection["maskedConnection"] == (f"postgres://{user}:****@{container.name}:5432/{db}")

    bound = await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/dependency-bindings",
        {"dependencyResourceId": dependency_id, "targetName": "DATABASE_URL"},
    )
    bindings = await stack.call("GET", f"/resources/{stack.resource_id}/dependency-bindings")
    assert [b["id"] for b in bindings["items"]] == [bound["id"]]
    assert password not in json.dumps(bindings)
    # Its network exists only on its server: a deployment elsewhere is refused, with the reason.
    other = await stack.coordinator.add_server(stack.token, "elsewhere")
    target = {
        "projectId": stack.project_id,
        "environmentId": stack.environment_id,
        "resourceId": stack.resource_id,
        "serverId": other["id"],
    }
    planned_elsewhere = await stack.call("GET", f"/deployments/plan?{urlencode(target)}")
    assert "dependency-server-mismatch" in planned_elsewhere["readiness"]["reasonCodes"]
    status, refused, _ = await stack.coordinator.call(
        "POST", "/deployments", token=stack.token, json=target
    )
    assert status == 409, refused
    deployment_id = await stack.deploy()
    shown_deployment = await stack.call("GET", f"/deployments/{deployment_id}")
    assert password not in json.dumps(shown_deployment)

    # The app reaches the database by name on the private network and writes rows.
    await _wait_rows(client, container, user, db, at_least=3)

    # Delete is refused while bound, and nothing changes.
    status, conflict, _ = await stack.coordinator.call(
        "DELETE", f"/dependency-resources/{dependency_id}", token=stack.token
    )
    assert status == 409, conflict
    assert conflict["error"]["details"]["blockers"][0]["relatedEntityId"] == stack.resource_id
    shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
    assert shown["dependencyResource"]["deleteSafety"]["blockers"][0]["kind"] == (
        "resource-binding"
    )

    # Data survives the database container's restart, and the app goes on writing.
    before = await asyncio.to_thread(_count, client, container, user, db)
    await asyncio.to_thread(container.restart, timeout=10)
    await _wait_rows(client, container, user, db, at_least=before + 2)

    # Rotation: a new password in the database and for the next deployment; data stays.
    rotations = f"/resources/{stack.resource_id}/dependency-bindings/{bound['id']}/secret-rotations"
    status, refused, _ = await stack.coordinator.call(
        "POST",
        rotations,
        token=stack.token,
        json={"confirmHistoricalSnapshotsRemainUnchanged": False},
    )
    assert status == 400, refused
    rotated = await stack.call(
        "POST", rotations, {"confirmHistoricalSnapshotsRemainUnchanged": True}
    )
    assert (rotated["id"], rotated["secretVersion"]) == (bound["id"], "v2")
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    new_password = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])[
        "POSTGRES_PASSWORD"
    ]
    assert new_password != password
    for secret, works in ((password, False), (new_password, True)):
        url = f"postgresql://{user}:{secret}@127.0.0.1:5432/{db}"
        code, _ = container.exec_run(["psql", url, "-tAc", "select 1"])
        assert (code == 0) is works
    shown = await stack.call("GET", f"/resources/{stack.resource_id}/dependency-bindings")
    assert shown["items"][0]["secretRotation"]["secretVersion"] == "v2"
    assert shown["items"][0]["secretRotation"]["previousSecretVersion"] == "v1"
    assert new_password not in json.dumps(shown)
    before = await asyncio.to_thread(_count, client, container, user, db)
    await stack.deploy()
    await _wait_rows(client, container, user, db, at_least=before + 2)

    await stack.call("DELETE", f"/resources/{stack.resource_id}/dependency-bindings/{bound['id']}")
    await stack.call("DELETE", f"/dependency-resources/{dependency_id}")
    assert not client.containers.list(
        all=True, filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    assert not client.networks.list(names=[container.name])
    assert not client.volumes.list(filters={"name": f"{container.name}-data"})
    events = {e["eventType"] for e in await audit_events(stack.coordinator, stack.token)}
    assert {
        "dependency-resource.planned",
        "dependency-resource.provisioned",
        "dependency-binding.created",
        "dependency-binding.removed",
        "dependency-resource.deleted",
    } <= events


async def _wait_rows(
    client: docker.DockerClient, container: Any, user: str, db: str, *, at_least: int
) -> None:
    async def enough() -> bool:
        return await asyncio.to_thread(_count, client, container, user, db) >= at_least

    await eventually(enough, timeout=60, what=f"at least {at_least} rows written by the app")


COUNTER = (
    'while true; do redis-cli -u "$CACHE_URL" --no-auth-warning incr visits && sleep 0.5; done'
)


async def test_provisioned_redis_keeps_the_counter_of_a_bound_app_across_a_restart(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    images: dict[str, str],
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", COUNTER)
    try:
        await stack.use_image(images["redis"])
        dependency_id = await stack.provision(
            "redis", "Cache", memoryBytes=128 * 1024 * 1024, publishPort=True
        )
        item = await stack.dependency_ready(dependency_id)
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
        assert container.attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024
        assert (
            item["connection"]["maskedConnection"] == f"redis://default:****@{container.name}:6379"
        )
        await stack.bind(dependency_id, "CACHE_URL")
        await stack.deploy()
        password = container.attrs["Config"]["Cmd"][2]

        def counter() -> int:
            code, out = container.exec_run(
                ["redis-cli", "-a", password, "--no-auth-warning", "get", "visits"]
            )
            assert isinstance(out, bytes)
            text = out.decode().strip()
            return int(text) if code == 0 and text.isdigit() else -1

        async def counted(at_least: int) -> None:
            async def enough() -> bool:
                return await asyncio.to_thread(counter) >= at_least

            await eventually(enough, timeout=60, what=f"the counter to reach {at_least}")

        await counted(3)
        before = await asyncio.to_thread(counter)
        await asyncio.to_thread(container.restart, timeout=10)
        await counted(before + 2)

        # Rotation recreates the container with the new password; the data stays.
        [binding] = (
            await stack.call("GET", f"/resources/{stack.resource_id}/dependency-bindings")
        )["items"]
        # Asked to, it deploys the bound app again at once (its container holds the old URL).
        rotated = await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/dependency-bindings/{binding['id']}/secret-rotations",
            {"confirmHistoricalSnapshotsRemainUnchanged": True, "redeployBoundResources": True},
        )
        assert rotated["secretVersion"] == "v2"
        [redeployment] = rotated["redeployments"]
        assert redeployment["resourceId"] == stack.resource_id, rotated
        assert redeployment["deploymentId"], rotated
        old_password = password
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
        password = container.attrs["Config"]["Cmd"][2]
        assert password != old_password
        _, out = container.exec_run(
            ["redis-cli", "-a", old_password, "--no-auth-warning", "get", "visits"]
        )
        assert isinstance(out, bytes)
        assert b"WRONGPASS" in out
        kept = await asyncio.to_thread(counter)
        assert kept >= before + 2
        await stack.succeeded(redeployment["deploymentId"])
        await counted(kept + 2)

        # Asked for, so published on loopback only; it answers there with its password. Checked
        # last: a client port left in TIME_WAIT can collide with a port Docker picks later.
        [published] = container.attrs["NetworkSettings"]["Ports"]["6379/tcp"]
        assert published["HostIp"] == "127.0.0.1"
        reader, writer = await asyncio.open_connection("127.0.0.1", int(published["HostPort"]))
        writer.write(f"AUTH default {container.attrs['Config']['Cmd'][2]}\r\nPING\r\n".encode())
        await writer.drain()
        assert await reader.readline() == b"+OK\r\n"
        assert await reader.readline() == b"+PONG\r\n"
        writer.close()
        await writer.wait_closed()
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


async def test_a_database_that_never_gets_healthy_ends_failed_with_the_reason(
    tmp_path: Path, database_url: str, docker_client: docker.DockerClient
) -> None:
    # The busybox image exits at once: the agent reports it and nothing is left ready.
    async with serving(
        tmp_path / "coordinator",
        database_url,
        dependency_image_postgres="berth-test/busybox:latest",
    ) as harness:
        token = await harness.bootstrap()
        stack = await workload(harness, token, tmp_path / "agent", "sleep 3600")
        try:
            dependency_id = await stack.provision("postgres", "Broken")

            async def failed() -> bool:
                shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
                return bool(shown["dependencyResource"]["lifecycleStatus"] == "failed")

            await eventually(failed, timeout=60, what="the provisioning to fail")
            shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
            realization = shown["dependencyResource"]["providerRealization"]
            assert realization["status"] == "failed"
            assert realization["failureCode"] == "dependency-not-ready"
            assert "exited" in realization["failureMessage"]
            assert realization["failedAt"] is not None
            assert shown["dependencyResource"]["bindingReadiness"]["status"] == "blocked"
            status, refused, _ = await harness.call(
                "POST",
                f"/resources/{stack.resource_id}/dependency-bindings",
                token=token,
                json={"dependencyResourceId": dependency_id, "targetName": "DATABASE_URL"},
            )
            assert status == 409, refused
            # A failed one can be deleted; its leftovers go with it.
            await stack.call("DELETE", f"/dependency-resources/{dependency_id}")
            assert not docker_client.containers.list(
                all=True, filters={"label": f"berth.dependency-resource-id={dependency_id}"}
            )
        finally:
            await stack.agent.stop()
            remove_session_objects(docker_client)


# The mariadb client takes no URL: split it in the shell (generated passwords are URL-safe).
MYSQL_WRITER = (
    'eval $(echo "$DATABASE_URL" | sed -E '
    "'s#^mysql://([^:]*):([^@]*)@([^:]*):([0-9]+)/(.*)$#U=\\1 P=\\2 H=\\3 N=\\4 D=\\5#'); "
    'while true; do mariadb -h"$H" -P"$N" -u"$U" -p"$P" "$D" -e '
    "'create table if not exists visits(id int auto_increment primary key); "
    "insert into visits values ()' && echo inserted; sleep 0.5; done"
)


async def test_provisioned_mariadb_is_written_by_a_bound_app_and_survives_a_restart(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    images: dict[str, str],
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", MYSQL_WRITER)
    try:
        await stack.use_image(images["mysql"])
        dependency_id = await stack.provision("mysql", "Orders")
        item = await stack.dependency_ready(dependency_id)
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
        assert item["connection"]["maskedConnection"] == (
            f"mysql://orders:****@{container.name}:3306/orders"
        )
        await stack.bind(dependency_id, "DATABASE_URL")
        await stack.deploy()

        def rows() -> int:
            code, out = container.exec_run(
                ["mariadb", "-N", "-e", "select count(*) from orders.visits"]
            )
            assert isinstance(out, bytes)
            text = out.decode().strip()
            return int(text) if code == 0 and text.isdigit() else -1

        async def written(at_least: int) -> None:
            async def enough() -> bool:
                return await asyncio.to_thread(rows) >= at_least

            await eventually(enough, timeout=60, what=f"{at_least} rows in MariaDB")

        await written(3)
        before = await asyncio.to_thread(rows)
        await asyncio.to_thread(container.restart, timeout=10)
        await written(before + 2)

        [binding] = (
            await stack.call("GET", f"/resources/{stack.resource_id}/dependency-bindings")
        )["items"]
        old_env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/dependency-bindings/{binding['id']}/secret-rotations",
            {"confirmHistoricalSnapshotsRemainUnchanged": True},
        )
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        assert env["MARIADB_PASSWORD"] != old_env["MARIADB_PASSWORD"]
        for secret, works in (
            (old_env["MARIADB_PASSWORD"], False),
            (env["MARIADB_PASSWORD"], True),
        ):
            code, _ = container.exec_run(
                ["mariadb", "-h127.0.0.1", "-uorders", f"-p{secret}", "orders", "-e", "select 1"]
            )
            assert (code == 0) is works
        kept = await asyncio.to_thread(rows)
        await stack.deploy()
        await written(kept + 2)
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


async def test_provisioning_waits_for_an_offline_agent_and_resumes_when_it_connects(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.agent.stop()
        dependency_id = await stack.provision("redis", "Later")
        shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
        assert shown["dependencyResource"]["lifecycleStatus"] == "provisioning"
        # A coordinator restart in between loses nothing: the row is the state.
        await coordinator.restart()
        await stack.agent.start()
        item = await stack.dependency_ready(dependency_id)
        assert item["providerRealization"]["status"] == "realized"
        assert docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={dependency_id}"}
        )
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)
