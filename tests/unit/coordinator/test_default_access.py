"""Default access domain policies: the Appaloft shapes, one policy per scope, the server's over
the system's, bad input refused with nothing stored, another tenant's server a 404."""

from datetime import UTC, datetime

from coordinator import default_access
from coordinator.db import models
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import scoped_token

PATH = "/default-access-domain-policies"


async def _configure(coordinator: Coordinator, token: str, body: dict[str, object]) -> str:
    status, answer, _ = await coordinator.call("POST", PATH, token=token, json=body)
    assert status == 200, answer
    assert_matches_schema("POST", PATH, answer)
    return str(answer["id"])


def test_generated_names_are_one_label_under_the_base() -> None:
    assert (
        default_access.generated_hostname("web", "production", "shop", "apps.example.com")
        == "web-production-shop.apps.example.com"
    )
    long_a = default_access.generated_label("a" * 40, "production", "b" * 30)
    long_b = default_access.generated_label("a" * 40, "production", "c" * 30)
    assert len(long_a) == len(long_b) == 63
    assert long_a != long_b  # the hash keeps two long names apart
    assert not long_a.startswith("-")
    assert "." not in long_a


async def test_a_system_policy_and_a_server_policy_are_served_and_resolved(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    other = await FakeAgent.enroll(coordinator, admin_token, "edge-2")
    status, shown, _ = await coordinator.call("GET", f"{PATH}/show", token=admin_token)
    assert (status, shown["policy"]) == (200, None)
    assert shown["scope"] == {"kind": "system", "serverId": None}

    system_id = await _configure(
        coordinator,
        admin_token,
        {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "Apps.Example.COM"},
    )
    server_id = await _configure(
        coordinator,
        admin_token,
        {
            "scope": {"kind": "deployment-target", "serverId": agent.server_id},
            "mode": "custom",
            "baseDomain": "edge1.example.net",
            "tlsMode": "certificate",
        },
    )
    # The same scope again replaces its policy (one per scope).
    again = await _configure(
        coordinator,
        admin_token,
        {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "apps.example.com"},
    )
    assert again == system_id

    status, listed, _ = await coordinator.call("GET", PATH, token=admin_token)
    assert status == 200, listed
    assert_matches_schema("GET", PATH, listed)
    assert listed["schemaVersion"] == "default-access-domain-policies.list/v1"
    system, server = listed["items"]
    assert system == {
        "schemaVersion": "default-access-domain-policies.policy/v1",
        "id": system_id,
        "scope": {"kind": "system", "serverId": None},
        "mode": "custom",
        "providerKey": "caddy",
        "templateRef": "berth-flat/v1",
        "baseDomain": "apps.example.com",
        "tlsMode": "on-demand",
        "updatedAt": system["updatedAt"],
    }
    assert (server["id"], server["scope"]) == (
        server_id,
        {"kind": "deployment-target", "serverId": agent.server_id},
    )
    status, shown, _ = await coordinator.call(
        "GET",
        f"{PATH}/show?scopeKind=deployment-target&serverId={agent.server_id}",
        token=admin_token,
    )
    assert status == 200, shown
    assert_matches_schema("GET", f"{PATH}/show", shown)
    assert shown["schemaVersion"] == "default-access-domain-policies.show/v1"
    assert (shown["policy"]["id"], shown["policy"]["tlsMode"]) == (server_id, "certificate")

    organization = (await models.Server.get(id=agent.server_id)).organization_id  # type: ignore[attr-defined]
    own = await default_access.effective(organization, agent.server_id)
    assert own == default_access.EffectivePolicy(server_id, "edge1.example.net", "certificate")
    fallback = await default_access.effective(organization, other.server_id)
    assert fallback == default_access.EffectivePolicy(system_id, "apps.example.com", "on-demand")
    # A server's disabled policy switches generated names off there, whatever the system says.
    await _configure(
        coordinator,
        admin_token,
        {"scope": {"kind": "deployment-target", "serverId": agent.server_id}, "mode": "disabled"},
    )
    assert await default_access.effective(organization, agent.server_id) is None

    events = [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"] == "default-access-domain-policy.configured"
    ]
    assert [e["aggregateId"] for e in events] == [system_id, server_id, system_id, server_id]
    assert events[0]["payload"]["baseDomain"] == "apps.example.com"


async def test_bad_policies_are_refused_with_nothing_stored(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    now = datetime.now(UTC)
    org = await models.Organization.create(id="org_other", name="O", slug="o", created_at=now)
    foreign = await models.Server.create(id="srv_other", organization=org, name="o", created_at=now)
    reader = await scoped_token(coordinator, admin_token, ["servers:read"])
    one_server = await scoped_token(
        coordinator, admin_token, ["servers:write"], deploymentTargetIds=[agent.server_id]
    )
    before = await database_dump(ignore={"last_used_at"})
    bad: list[tuple[dict[str, object], int, str]] = [
        ({"scope": {"kind": "system"}, "mode": "custom"}, 400, "invalid_request"),
        (
            {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "not a domain"},
            400,
            "invalid_request",
        ),
        (
            {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "*.apps.example.com"},
            400,
            "invalid_request",
        ),
        (
            {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "10.0.0.1"},
            400,
            "invalid_request",
        ),
        (
            {
                "scope": {"kind": "system"},
                "mode": "custom",
                "baseDomain": ".".join(["a" * 60] * 4) + ".test",
            },
            400,
            "invalid_request",
        ),
        ({"scope": {"kind": "system"}, "mode": "sometimes"}, 400, "invalid_request"),
        (
            {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "a.test", "x": 1},
            400,
            "invalid_request",
        ),
        ({"scope": {"kind": "deployment-target"}, "mode": "disabled"}, 400, "invalid_request"),
        (
            {"scope": {"kind": "system", "serverId": agent.server_id}, "mode": "disabled"},
            400,
            "invalid_request",
        ),
        (
            {"scope": {"kind": "deployment-target", "serverId": foreign.id}, "mode": "disabled"},
            404,
            "not_found",
        ),
    ]
    for body, status, code in bad:
        response = await coordinator.call("POST", PATH, token=admin_token, json=body)
        error = assert_error(response, status, code)
        if "baseDomain" in body and status == 400 and "x" not in body:
            assert error["details"]["problems"][0]["field"] == "baseDomain", error
    response = await coordinator.call(
        "GET", f"{PATH}/show?scopeKind=deployment-target&serverId={foreign.id}", token=admin_token
    )
    assert_error(response, 404, "not_found")

    body = {"scope": {"kind": "system"}, "mode": "custom", "baseDomain": "apps.example.com"}
    assert_error(await coordinator.call("POST", PATH, token=reader, json=body), 403, "forbidden")
    # A token limited to one server cannot set what every server follows.
    assert_error(
        await coordinator.call("POST", PATH, token=one_server, json=body), 403, "forbidden"
    )
    assert await database_dump(ignore={"last_used_at"}) == before
