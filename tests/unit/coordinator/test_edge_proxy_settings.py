"""Edge proxy settings: stored while the agent is offline, pushed when it connects, shown on the
server; scoped and audited."""

from datetime import UTC, datetime

from shared.messages.edge import EdgeConfigure, EdgeConfigured
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error, audit_events
from tests.unit.coordinator.test_projects_api import scoped_token

CONFIGURE = "/servers/{serverId}/edge-proxy/configuration"


async def edge_proxy(coordinator: Coordinator, token: str, server_id: str) -> dict[str, object]:
    status, body, _ = await coordinator.call("GET", f"/servers/{server_id}", token=token)
    assert status == 200, body
    return dict(body["server"]["edgeProxy"])


async def test_settings_set_while_offline_are_pushed_when_the_agent_connects(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    assert (await edge_proxy(coordinator, admin_token, agent.server_id))["status"] == "pending"
    body = {"listen": ":8080", "tlsListen": "[::]:8443", "http3": True, "acmeEmail": "a@b.test"}
    status, answer, _ = await coordinator.call(
        "POST", f"/servers/{agent.server_id}/edge-proxy/configuration", token=admin_token, json=body
    )
    assert status == 200, answer
    assert_matches_schema("POST", CONFIGURE, answer)
    assert answer == {
        "id": agent.server_id,
        "edgeProxy": {
            "kind": "caddy",
            "status": "pending",
            "lastAttemptAt": answer["edgeProxy"]["lastAttemptAt"],
            "lastSucceededAt": None,
            "lastErrorCode": None,
            "lastErrorMessage": None,
        },
    }
    [event] = [
        e
        for e in await audit_events(coordinator, admin_token, aggregateId=agent.server_id)
        if e["eventType"] == "server.edge-proxy-configured"
    ]
    assert (event["payload"]["tlsListen"], event["payload"]["http3"]) == ("[::]:8443", True)

    await agent.connect()
    pushed = await agent.expect(EdgeConfigure)
    assert pushed.settings is not None
    assert (pushed.settings.listen, pushed.settings.tls_listen, pushed.settings.http3) == (
        ":8080",
        "[::]:8443",
        True,
    )
    assert (pushed.settings.acme_email, pushed.bootstrap) == ("a@b.test", False)
    await agent.send(
        EdgeConfigured(
            id=agent.next_id(),
            re=pushed.id,
            attempt_id=pushed.attempt_id,
            status="succeeded",
            completed_at=datetime.now(UTC),
        )
    )

    async def ready() -> bool:
        return (await edge_proxy(coordinator, admin_token, agent.server_id))["status"] == "ready"

    await eventually(ready, what="edge proxy ready after the push")
    status, listed, _ = await coordinator.call("GET", "/servers", token=admin_token)
    assert [s["edgeProxy"]["status"] for s in listed["items"]] == ["ready"]
    await agent.close()


async def test_edge_settings_need_servers_write_and_a_visible_server(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    other = await FakeAgent.enroll(coordinator, admin_token, "edge-2")
    reader = await scoped_token(coordinator, admin_token, ["servers:read"])
    response = await coordinator.call(
        "POST", f"/servers/{agent.server_id}/edge-proxy/configuration", token=reader, json={}
    )
    assert_error(response, 403, "forbidden")
    elsewhere = await scoped_token(
        coordinator, admin_token, ["servers:write"], deploymentTargetIds=[other.server_id]
    )
    for path in ("configuration", "bootstrap"):
        response = await coordinator.call(
            "POST", f"/servers/{agent.server_id}/edge-proxy/{path}", token=elsewhere, json={}
        )
        assert_error(response, 404, "not_found")
    # Offline: a bootstrap cannot run (nothing is recorded as attempted).
    response = await coordinator.call(
        "POST", f"/servers/{agent.server_id}/edge-proxy/bootstrap", token=admin_token, json={}
    )
    assert_error(response, 503, "unavailable")
    events = await audit_events(coordinator, admin_token, aggregateId=agent.server_id)
    assert not [e for e in events if e["eventType"].startswith("server.edge-proxy")]
