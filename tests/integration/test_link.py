"""The agent link end to end: real coordinator, real agent subprocess, real handshake."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from coordinator.db import models
from shared.version import EXIT_FATAL
from tests.harness import AgentProcess, Coordinator, eventually


async def _online_agent(
    coordinator: Coordinator, token: str, tmp_path: Path, name: str = "web-1"
) -> tuple[str, AgentProcess]:
    server = await coordinator.add_server(token, name)
    agent = AgentProcess(tmp_path / f"agent-{name}")
    code, out = await agent.enroll(coordinator.url, server["joinToken"])
    assert code == 0, out
    await agent.start()

    async def online() -> bool:
        return await coordinator.agent_status(token, server["id"]) == "online"

    await eventually(online, what=f"{name} online")
    return server["id"], agent


async def test_enrolled_agent_comes_online_with_facts(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    assert server["joinToken"].startswith("berth_jt_")
    assert server["joinToken"] in server["installCommand"]
    expires = datetime.fromisoformat(server["joinTokenExpiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert await coordinator.agent_status(admin_token, server["id"]) == "never-connected"

    agent = AgentProcess(tmp_path / "agent")
    code, out = await agent.enroll(coordinator.url, server["joinToken"])
    assert code == 0, out
    key = tmp_path / "agent" / "agent.key"
    assert key.stat().st_mode & 0o777 == 0o600
    row = await models.Server.get(id=server["id"])
    assert row.agent_public_key is not None
    assert row.agent_public_key.startswith("ed25519:")
    assert "PRIVATE" not in row.agent_public_key
    await agent.start()
    try:

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, server["id"]) == "online"

        await eventually(online, what="agent online")
        status, body, _ = await coordinator.call(
            "GET", f"/servers/{server['id']}", token=admin_token
        )
        agent_doc = body["server"]["agent"]
        assert body["schemaVersion"] == "servers.show/v1"
        assert agent_doc["version"] == "0.1.0"
        assert agent_doc["lastSeenAt"] is not None
        facts = agent_doc["facts"]
        for field in ("hostname", "os", "kernel", "cpuCount", "memoryBytes", "pythonVersion"):
            assert facts[field], field
        assert "dockerVersion" in facts

        status, report, _ = await coordinator.call(
            "POST", f"/servers/{server['id']}/connectivity-tests", token=admin_token
        )
        assert status == 200, report
        names = {c["name"]: c for c in report["checks"]}
        assert names["agent-link"]["status"] == "passed"
        assert names["agent-round-trip"]["status"] == "passed"
        assert names["agent-round-trip"]["durationMs"] > 0
        assert names["state-directory"]["status"] == "passed"
        assert "docker-daemon" in names
    finally:
        await agent.stop()

    async def offline() -> bool:
        return await coordinator.agent_status(admin_token, server["id"]) == "offline"

    await eventually(offline, what="agent offline after it stopped")


async def test_join_token_is_single_use(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    first = AgentProcess(tmp_path / "a1")
    assert (await first.enroll(coordinator.url, server["joinToken"]))[0] == 0
    second = AgentProcess(tmp_path / "a2")
    code, out = await second.enroll(coordinator.url, server["joinToken"])
    assert code == EXIT_FATAL
    assert "already used" in out
    assert len(out.strip().splitlines()) == 1, out


async def test_expired_join_token_is_refused(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    await models.JoinToken.filter(server_id=server["id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    agent = AgentProcess(tmp_path / "a")
    code, out = await agent.enroll(coordinator.url, server["joinToken"])
    assert code == EXIT_FATAL
    assert "expired" in out
    assert not (tmp_path / "a" / "state.json").exists()


async def test_unknown_join_token_is_refused(coordinator: Coordinator, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "a")
    code, out = await agent.enroll(coordinator.url, "berth_jt_" + "x" * 43)
    assert code == EXIT_FATAL
    assert "not valid" in out


async def test_unreachable_coordinator_is_a_distinct_exit(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "a")
    code, out = await agent.enroll("http://127.0.0.1:9", "berth_jt_whatever-token")
    assert code == 75
    assert "cannot reach" in out


async def test_agent_reconnects_after_coordinator_restart(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server_id, agent = await _online_agent(coordinator, admin_token, tmp_path)
    try:
        await coordinator.restart()
        assert len(coordinator.registry) == 0

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, server_id) == "online"

        await eventually(online, what="agent back online after restart")
        assert agent.process is not None
        assert agent.process.returncode is None
        assert "reconnecting in" in agent.log()
    finally:
        await agent.stop()


async def test_forged_key_is_refused(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server_id, real = await _online_agent(coordinator, admin_token, tmp_path)
    await real.stop()
    # An impostor knows the server id but has its own key (enrolled for another server).
    other = await coordinator.add_server(admin_token, "other")
    impostor = AgentProcess(tmp_path / "impostor")
    assert (await impostor.enroll(coordinator.url, other["joinToken"]))[0] == 0
    state = tmp_path / "impostor" / "state.json"
    state.write_text(state.read_text().replace(other["id"], server_id))
    await impostor.start()
    assert await impostor.wait_exit() == EXIT_FATAL
    assert "agent key not recognised" in impostor.log()
    assert await coordinator.agent_status(admin_token, server_id) == "offline"


async def test_deactivation_closes_link_and_refuses_reconnect(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server_id, agent = await _online_agent(coordinator, admin_token, tmp_path)
    status, body, _ = await coordinator.call(
        "POST", f"/servers/{server_id}/deactivate", token=admin_token, json={"reason": "retired"}
    )
    assert status == 200, body
    assert await agent.wait_exit() == EXIT_FATAL
    assert "server is deactivated" in agent.log()
    # A restarted agent with the same key is refused again, and exits again.
    await agent.start()
    assert await agent.wait_exit() == EXIT_FATAL
    assert await coordinator.agent_status(admin_token, server_id) == "offline"


async def test_key_rotation_closes_link_and_old_key_is_refused(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server_id, agent = await _online_agent(coordinator, admin_token, tmp_path)
    old_state = tmp_path / "agent-web-1"
    status, body, _ = await coordinator.call(
        "POST", f"/servers/{server_id}/agent-key/rotate", token=admin_token, json={}
    )
    assert status == 200, body
    assert await agent.wait_exit() == EXIT_FATAL
    assert "agent key was revoked" in agent.log()
    await agent.start()
    assert await agent.wait_exit() == EXIT_FATAL
    # Re-enrolling with the new join token gives a new key and the server comes back online.
    code, out = await agent.enroll(coordinator.url, body["joinToken"], "--force")
    assert code == 0, out
    assert (old_state / "agent.key").exists()
    await agent.start()
    try:

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, server_id) == "online"

        await eventually(online, what="re-enrolled agent online")
    finally:
        await agent.stop()


async def test_delete_requires_deactivation_and_closes_link(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    server_id, agent = await _online_agent(coordinator, admin_token, tmp_path)
    try:
        status, body, _ = await coordinator.call(
            "DELETE",
            f"/servers/{server_id}",
            token=admin_token,
            json={"confirmation": {"serverId": server_id}},
        )
        assert status == 409, body
        assert body["error"]["details"]["blockers"][0]["kind"] == "active-server"
        status, check, _ = await coordinator.call(
            "GET", f"/servers/{server_id}/delete-check", token=admin_token
        )
        assert check["eligible"] is False
        await coordinator.call(
            "POST", f"/servers/{server_id}/deactivate", token=admin_token, json={}
        )
        assert await agent.wait_exit() == EXIT_FATAL
        status, body, _ = await coordinator.call(
            "DELETE",
            f"/servers/{server_id}",
            token=admin_token,
            json={"confirmation": {"serverId": "srv_wrong"}},
        )
        assert status == 400, body
        status, body, _ = await coordinator.call(
            "DELETE",
            f"/servers/{server_id}",
            token=admin_token,
            json={"confirmation": {"serverId": server_id}},
        )
        assert status == 200, body
        await agent.start()
        assert await agent.wait_exit() == EXIT_FATAL
        status, _, _ = await coordinator.call("GET", f"/servers/{server_id}", token=admin_token)
        assert status == 404
    finally:
        await agent.stop()


async def test_connectivity_test_of_offline_server_reports_unreachable(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    status, report, _ = await coordinator.call(
        "POST", f"/servers/{server['id']}/connectivity-tests", token=admin_token
    )
    assert status == 200
    assert report["status"] == "unreachable"
    assert report["checks"][0] == {
        "name": "agent-link",
        "status": "failed",
        "message": "the agent is not connected",
        "durationMs": 0.0,
        "metadata": {},
        # Only an HTTP health probe has these (issue 20); the link check has neither.
        "statusCode": None,
        "reasonCode": None,
    }
