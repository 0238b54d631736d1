"""Organizations on a real coordinator: invite -> accept -> act with the role -> downgrade ->
denied; role rules; switching; owner transfer; removal ends open streams; delete checks."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from coordinator.db import models
from coordinator.db.organization_models import OrganizationInvitation, OrganizationMember
from tests.harness import Coordinator, scaled
from tests.unit.coordinator.support import assert_error, database_dump
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world
from tests.unit.coordinator.test_projects_api import create_project
from tests.unit.coordinator.test_token_streams import _stream_until_closed

ORG: Final = "/organizations/org_default"
PASSWORD: Final = "tram-lantern-opal-93"


async def _invite(
    coordinator: Coordinator, token: str, email: str, role: str, org: str = ORG
) -> dict[str, Any]:
    status, body, _ = await coordinator.call(
        "POST", f"{org}/invitations", token=token, json={"email": email, "role": role}
    )
    assert status == 201, body
    return dict(body)


async def _join(coordinator: Coordinator, token: str, email: str, role: str) -> dict[str, Any]:
    """Invite ``email``, accept as a new account, log in; the login answer plus ``memberId``."""
    invitation = await _invite(coordinator, token, email, role)
    status, accepted, _ = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        json={"token": invitation["token"], "password": PASSWORD, "displayName": email},
    )
    assert status == 201, accepted
    status, session, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert status == 201, session
    return {**session, "memberId": accepted["member"]["memberId"]}


async def _owner_member_id(coordinator: Coordinator, token: str) -> str:
    status, body, _ = await coordinator.call("GET", f"{ORG}/members", token=token)
    assert status == 200, body
    return str(next(m["memberId"] for m in body["items"] if m["role"] == "owner"))


async def test_invite_accept_act_with_the_role_then_a_downgrade_is_denied_at_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    invitation = await _invite(coordinator, admin_token, "bob@example.com", "member")
    assert invitation["token"].startswith("berth_inv_")
    assert invitation["status"] == "pending"
    assert invitation["inviter"]["email"] == "admin@example.com"
    stored = await OrganizationInvitation.get(id=invitation["invitationId"])
    assert invitation["token"] not in stored.token_hash  # only its digest is kept
    status, listed, _ = await coordinator.call("GET", f"{ORG}/invitations", token=admin_token)
    assert status == 200, listed
    assert [i["invitationId"] for i in listed["items"]] == [invitation["invitationId"]]
    assert "token" not in listed["items"][0] or listed["items"][0]["token"] is None
    # A weak password creates nothing.
    before = await database_dump(ignore={"audit_events"})
    weak = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        json={"token": invitation["token"], "password": "password"},
    )
    assert_error(weak, 400, "invalid_request")
    assert await database_dump(ignore={"audit_events"}) == before
    status, accepted, _ = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        json={"token": invitation["token"], "password": PASSWORD, "displayName": "Bob"},
    )
    assert status == 201, accepted
    assert accepted["member"]["role"] == "member"
    assert accepted["organizationId"] == "org_default"
    replay = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        json={"token": invitation["token"], "password": PASSWORD},
    )
    assert_error(replay, 409, "conflict")
    status, session, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert status == 201, session
    bob = session["token"]
    status, context, _ = await coordinator.call("GET", "/organizations/current-context", token=bob)
    assert status == 200, context
    assert context["currentOrganization"]["role"] == "member"
    assert context["permissions"]["canInviteMembers"] is False
    # A member builds and ships: it creates projects, reads servers...
    status, project, _ = await coordinator.call("POST", "/projects", token=bob, json={"name": "a"})
    assert status == 201, project
    assert (await coordinator.call("GET", "/servers", token=bob))[0] == 200
    # ...but neither adds servers, opens shells, nor invites.
    assert_error(
        await coordinator.call("POST", "/servers", token=bob, json={"name": "s1"}), 403, "forbidden"
    )
    assert_error(await coordinator.call("GET", "/terminal-sessions", token=bob), 403, "forbidden")
    assert_error(
        await coordinator.call(
            "POST",
            f"{ORG}/invitations",
            token=bob,
            json={"email": "x@example.com", "role": "viewer"},
        ),
        403,
        "forbidden",
    )
    # Its deploy token within its rights works; one beyond them cannot be minted.
    status, minted, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=bob,
        json={"displayName": "ci", "scope": {"permissions": ["projects:write"]}},
    )
    assert status == 201, minted
    assert_error(
        await coordinator.call(
            "POST",
            "/deploy-tokens",
            token=bob,
            json={"displayName": "wide", "scope": {"permissions": ["servers:write"]}},
        ),
        403,
        "forbidden",
    )
    status, changed, _ = await coordinator.call(
        "POST",
        f"{ORG}/members/{accepted['member']['memberId']}/role",
        token=admin_token,
        json={"role": "viewer"},
    )
    assert status == 200, changed
    assert changed["role"] == "viewer"
    # The very next request sees the viewer: reads work, writes do not.
    assert (await coordinator.call("GET", "/projects", token=bob))[0] == 200
    assert_error(
        await coordinator.call("POST", "/projects", token=bob, json={"name": "b"}),
        403,
        "forbidden",
    )
    # The token it minted as a member reaches beyond a viewer: revoked with the downgrade.
    assert_error(
        await coordinator.call("POST", "/projects", token=minted["token"], json={"name": "c"}),
        401,
        "unauthorized",
    )
    events = {
        e.event_type: e
        for e in await models.AuditEvent.filter(event_type__startswith="organization.")
    }
    assert {
        "organization.invitation-created",
        "organization.invitation-accepted",
        "organization.member-role-changed",
    } <= set(events)
    role_changed = events["organization.member-role-changed"]
    assert role_changed.organization_id == "org_default"
    assert role_changed.actor_id is not None
    assert role_changed.payload["fromRole"] == "member"
    assert role_changed.payload["toRole"] == "viewer"
    assert role_changed.payload["actorRole"] == "owner"
    assert PASSWORD not in repr([e.payload for e in events.values()])


async def test_role_rules_refuse_escalation_and_keep_the_last_owner(
    coordinator: Coordinator, admin_token: str
) -> None:
    carol = await _join(coordinator, admin_token, "carol@example.com", "admin")
    bob = await _join(coordinator, admin_token, "bob@example.com", "member")
    owner_id = await _owner_member_id(coordinator, admin_token)
    before = await database_dump(ignore={"audit_events"})
    carol_token, bob_token = str(carol["token"]), str(bob["token"])
    refusals: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        # An admin cannot make an owner, nor touch the owner, nor invite an owner.
        ("POST", f"{ORG}/members/{bob['memberId']}/role", carol_token, {"role": "owner"}, 403),
        ("POST", f"{ORG}/members/{owner_id}/role", carol_token, {"role": "viewer"}, 403),
        ("DELETE", f"{ORG}/members/{owner_id}", carol_token, {}, 403),
        (
            "POST",
            f"{ORG}/invitations",
            carol_token,
            {"email": "o@example.com", "role": "owner"},
            400,
        ),
        # A member cannot manage members at all.
        ("POST", f"{ORG}/members/{carol['memberId']}/role", bob_token, {"role": "viewer"}, 403),
        # The last owner can be neither downgraded nor removed.
        ("POST", f"{ORG}/members/{owner_id}/role", admin_token, {"role": "admin"}, 409),
        ("DELETE", f"{ORG}/members/{owner_id}", admin_token, {}, 409),
        # Only the owner transfers its own ownership.
        (
            "POST",
            f"{ORG}/owner-transfer",
            carol_token,
            {"fromMemberId": owner_id, "toMemberId": carol["memberId"]},
            403,
        ),
        # Another organization's id looks missing.
        ("GET", "/organizations/org_other/members", admin_token, None, 404),
    ]
    for method, path, token, body, status in refusals:
        answer = await coordinator.call(method, path, token=token, json=body)
        assert answer[0] == status, (method, path, answer[1])
        assert set(answer[1]) == {"error", "requestId"}
    assert await database_dump(ignore={"audit_events"}) == before
    # An admin may downgrade a member; the owner hands over ownership.
    status, body, _ = await coordinator.call(
        "POST",
        f"{ORG}/members/{bob['memberId']}/role",
        token=carol["token"],
        json={"role": "viewer"},
    )
    assert status == 200, body
    status, moved, _ = await coordinator.call(
        "POST",
        f"{ORG}/owner-transfer",
        token=admin_token,
        json={"fromMemberId": owner_id, "toMemberId": carol["memberId"]},
    )
    assert status == 200, moved
    assert moved["fromMember"]["role"] == "admin"
    assert moved["toMember"]["role"] == "owner"
    status, context, _ = await coordinator.call(
        "GET", "/organizations/current-context", token=carol["token"]
    )
    assert context["permissions"]["canTransferOwnership"] is True
    assert await models.AuditEvent.exists(event_type="organization.owner-transferred")


async def test_switching_organizations_and_invitations_that_no_longer_work(
    coordinator: Coordinator, admin_token: str
) -> None:
    bob = await _join(coordinator, admin_token, "bob@example.com", "member")
    status, session, _ = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": PASSWORD}
    )
    assert status == 200, session
    status, owner, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
    )
    assert status == 201, owner
    status, created, _ = await coordinator.call(
        "POST", "/organizations", token=owner["token"], json={"name": "Second", "slug": "second"}
    )
    assert status == 201, created
    second = created["organizationId"]
    assert created["role"] == "owner"
    # Bob is not in it: switching there looks like switching to nothing, and changes nothing.
    assert_error(
        await coordinator.call(
            "POST",
            "/organizations/current-context/switch",
            token=bob["token"],
            json={"organizationId": second},
        ),
        404,
        "not_found",
    )
    status, context, _ = await coordinator.call(
        "POST",
        "/organizations/current-context/switch",
        token=owner["token"],
        json={"organizationId": second},
    )
    assert status == 200, context
    assert context["currentOrganization"]["organizationId"] == second
    assert {o["slug"] for o in context["organizations"]} == {"default", "second"}
    # Acting in the second organization: the first one's projects are out of sight.
    _ = await coordinator.call("POST", "/projects", token=admin_token, json={"name": "first"})
    status, projects, _ = await coordinator.call("GET", "/projects", token=owner["token"])
    assert status == 200, projects
    assert projects["items"] == []
    assert_error(
        await coordinator.call("GET", f"{ORG}/members", token=owner["token"]), 404, "not_found"
    )
    # Invitations: revoked and expired links do not work; nothing is created.
    revoked = await _invite(coordinator, admin_token, "dan@example.com", "viewer")
    status, body, _ = await coordinator.call(
        "POST", f"{ORG}/invitations/{revoked['invitationId']}/revoke", token=admin_token
    )
    assert status == 200, body
    assert body["status"] == "revoked"
    expired = await _invite(coordinator, admin_token, "eve@example.com", "viewer")
    _ = await OrganizationInvitation.filter(id=expired["invitationId"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    for invitation, state in ((revoked, "revoked"), (expired, "expired")):
        error = assert_error(
            await coordinator.call(
                "POST",
                "/organization-invitations/accept",
                json={"token": invitation["token"], "password": PASSWORD},
            ),
            409,
            "conflict",
        )
        assert error["details"]["status"] == state
    assert not await models.User.filter(email__in=["dan@example.com", "eve@example.com"]).exists()
    status, listed, _ = await coordinator.call(
        "GET", f"{ORG}/invitations?status=expired", token=admin_token
    )
    assert [i["invitationId"] for i in listed["items"]] == [expired["invitationId"]]
    # An existing account accepts with its own session (an anonymous accept is refused).
    other = await _invite(
        coordinator, owner["token"], "bob@example.com", "viewer", org=f"/organizations/{second}"
    )
    assert_error(
        await coordinator.call(
            "POST", "/organization-invitations/accept", json={"token": other["token"]}
        ),
        401,
        "unauthorized",
    )
    status, joined, _ = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        token=bob["token"],
        json={"token": other["token"]},
    )
    assert status == 201, joined
    assert joined["member"]["role"] == "viewer"
    assert await OrganizationMember.filter(user__email="bob@example.com").count() == 2


async def test_removing_a_member_ends_its_open_streams_and_its_access(
    coordinator: Coordinator, admin_token: str
) -> None:
    bob = await _join(coordinator, admin_token, "bob@example.com", "member")
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    opened = asyncio.Event()
    stream = asyncio.create_task(_stream_until_closed(coordinator, bob["token"], path, opened))
    await asyncio.wait_for(opened.wait(), scaled(10))
    status, body, _ = await coordinator.call(
        "DELETE", f"{ORG}/members/{bob['memberId']}", token=admin_token, json={}
    )
    assert status == 200, body
    assert body["memberId"] == bob["memberId"]
    await asyncio.wait_for(stream, scaled(10))  # the coordinator closed it
    assert_error(
        await coordinator.call("GET", f"/deployments/{deployment_id}", token=bob["token"]),
        403,
        "forbidden",
    )
    # The session still manages its own account (and could switch to another organization).
    status, context, _ = await coordinator.call(
        "GET", "/organizations/current-context", token=bob["token"]
    )
    assert status == 200, context
    assert context["currentOrganization"]["role"] is None
    assert context["organizations"] == []
    removed = await models.AuditEvent.get(event_type="organization.member-removed")
    assert removed.payload["role"] == "member"
    # The organization still has a server and a resource: it cannot be deleted.
    blocked = assert_error(
        await coordinator.call(
            "DELETE",
            ORG,
            token=admin_token,
            json={"confirmation": {"organizationId": "org_default"}},
        ),
        409,
        "conflict",
    )
    kinds = {b["kind"] for b in blocked["details"]["blockers"]}
    assert kinds == {"server", "resource"}


async def test_project_grants_allow_deploying_in_one_project_and_only_reading_another(
    coordinator: Coordinator, admin_token: str
) -> None:
    bob = await _join(coordinator, admin_token, "bob@example.com", "member")
    world = await make_world(coordinator, admin_token)  # project "shop", deployable
    read_only = await create_project(coordinator, admin_token, "reports")
    hidden = await create_project(coordinator, admin_token, "payroll")
    grants = {world.project_id: "member", read_only: "viewer"}
    path = f"{ORG}/members/{bob['memberId']}/project-grants"
    # A grant above the member's own role, or naming another tenant's project, changes nothing.
    before = await database_dump(ignore={"audit_events"})
    assert_error(
        await coordinator.call(
            "POST", path, token=admin_token, json={"projectRoles": {read_only: "admin"}}
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await coordinator.call(
            "POST", path, token=admin_token, json={"projectRoles": {"prj_elsewhere": "viewer"}}
        ),
        404,
        "not_found",
    )
    assert await database_dump(ignore={"audit_events"}) == before
    status, member, _ = await coordinator.call(
        "POST", path, token=admin_token, json={"projectRoles": grants}
    )
    assert status == 200, member
    assert member["projectRoles"] == grants
    token = bob["token"]
    status, listed, _ = await coordinator.call("GET", "/projects", token=token)
    assert status == 200, listed
    assert {p["id"] for p in listed["items"]} == {world.project_id, read_only}
    # Deploy in the granted project; only read the other; the third does not exist for Bob.
    assert (await coordinator.call("POST", "/deployments", token=token, json=world.target()))[
        0
    ] == 201
    assert (await coordinator.call("GET", f"/projects/{read_only}", token=token))[0] == 200
    rename = {"name": "renamed"}
    # Visible but not permitted is 403 (nothing renamed); out of scope is 404.
    before = await database_dump(ignore={"audit_events"})
    refused = assert_error(
        await coordinator.call("POST", f"/projects/{read_only}/rename", token=token, json=rename),
        403,
        "forbidden",
    )
    assert refused["details"] == {"requiredPermission": "projects:write", "projectId": read_only}
    assert_error(
        await coordinator.call("POST", f"/projects/{hidden}/rename", token=token, json=rename),
        404,
        "not_found",
    )
    assert await database_dump(ignore={"audit_events"}) == before
    assert (
        await coordinator.call(
            "POST", f"/projects/{world.project_id}/rename", token=token, json=rename
        )
    )[0] == 200
    assert_error(
        await coordinator.call("GET", f"/projects/{hidden}", token=token), 404, "not_found"
    )
    # A token Bob mints gets the weakest grant's rights, in the granted projects only.
    refused = assert_error(
        await coordinator.call(
            "POST",
            "/deploy-tokens",
            token=token,
            json={"displayName": "ci", "scope": {"permissions": ["deployments:write"]}},
        ),
        403,
        "forbidden",
    )
    assert "permissions" in refused["details"]["beyondScope"]
    status, minted, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=token,
        json={
            "displayName": "reader",
            "scope": {"permissions": ["projects:read"], "projectIds": [read_only]},
        },
    )
    assert status == 201, minted
    assert await models.AuditEvent.exists(event_type="organization.member-project-grants-changed")


async def test_an_empty_organization_is_deleted_and_an_owner_keeps_its_account_until_transfer(
    coordinator: Coordinator, admin_token: str
) -> None:
    bob = await _join(coordinator, admin_token, "bob@example.com", "member")
    status, created, _ = await coordinator.call(
        "POST", "/organizations", token=bob["token"], json={"name": "Side", "slug": "side"}
    )
    assert status == 201, created
    side = created["organizationId"]
    taken = await coordinator.call(
        "POST", "/organizations", token=bob["token"], json={"name": "Dup", "slug": "side"}
    )
    assert_error(taken, 409, "conflict")
    status, context, _ = await coordinator.call(
        "POST",
        "/organizations/current-context/switch",
        token=bob["token"],
        json={"organizationId": side},
    )
    assert status == 200, context
    status, minted, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=bob["token"],
        json={"displayName": "side ci", "scope": {"permissions": ["projects:read"]}},
    )
    assert status == 201, minted
    # Bob owns "side": deleting his account would leave it without an owner.
    refused = assert_error(
        await coordinator.call(
            "DELETE",
            "/account",
            token=bob["token"],
            json={"confirmation": {"userId": bob["userId"]}},
        ),
        409,
        "conflict",
    )
    assert refused["details"]["blockers"] == [{"kind": "last-owner", "relatedEntityId": side}]
    wrong = await coordinator.call(
        "DELETE",
        f"/organizations/{side}",
        token=bob["token"],
        json={"confirmation": {"organizationId": "org_default"}},
    )
    assert_error(wrong, 400, "invalid_request")
    status, deleted, _ = await coordinator.call(
        "DELETE",
        f"/organizations/{side}",
        token=bob["token"],
        json={"confirmation": {"organizationId": side}},
    )
    assert status == 200, deleted
    assert deleted["organizationId"] == side
    assert_error(
        await coordinator.call("GET", "/projects", token=minted["token"]), 401, "unauthorized"
    )
    status, context, _ = await coordinator.call(
        "GET", "/organizations/current-context", token=bob["token"]
    )
    assert status == 200, context
    assert context["currentOrganization"]["role"] is None
    assert [o["slug"] for o in context["organizations"]] == ["default"]
    assert await models.AuditEvent.exists(event_type="organization.deleted", aggregate_id=side)


async def test_the_profile_is_shown_and_updated_by_those_allowed(
    coordinator: Coordinator, admin_token: str
) -> None:
    viewer = await _join(coordinator, admin_token, "val@example.com", "viewer")
    status, shown, _ = await coordinator.call("GET", f"{ORG}/profile", token=viewer["token"])
    assert status == 200, shown
    assert (shown["slug"], shown["role"]) == ("default", "viewer")
    assert shown["permissions"]["canListMembers"] is True
    assert shown["permissions"]["canUpdateMemberRoles"] is False
    change = {"name": "Acme", "slug": "acme", "logoUrl": "https://acme.example/logo.png"}
    assert_error(
        await coordinator.call("POST", f"{ORG}/profile", token=viewer["token"], json=change),
        403,
        "forbidden",
    )
    bad = await coordinator.call(
        "POST", f"{ORG}/profile", token=admin_token, json={"slug": "Not A Slug"}
    )
    assert_error(bad, 400, "invalid_request")
    script = await coordinator.call(
        "POST", f"{ORG}/profile", token=admin_token, json={"logoUrl": "javascript:alert(1)"}
    )
    assert_error(script, 400, "invalid_request")
    assert (await models.Organization.get(id="org_default")).slug == "default"
    status, updated, _ = await coordinator.call(
        "POST", f"{ORG}/profile", token=admin_token, json=change
    )
    assert status == 200, updated
    assert (updated["name"], updated["slug"], updated["logoUrl"]) == (
        "Acme",
        "acme",
        "https://acme.example/logo.png",
    )
    assert updated["role"] == "owner"
    assert updated["permissions"]["canTransferOwnership"] is True
    status, other, _ = await coordinator.call(
        "POST", "/organizations", token=admin_token, json={"name": "B", "slug": "bee"}
    )
    assert status == 201, other
    taken = await coordinator.call(
        "POST", f"{ORG}/profile", token=admin_token, json={"slug": "bee"}
    )
    assert_error(taken, 409, "conflict")
    event = await models.AuditEvent.get(event_type="organization.profile-updated")
    assert event.payload["changed"] == ["logoUrl", "name", "slug"]
