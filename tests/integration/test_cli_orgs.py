"""``berth orgs`` against a real coordinator: invite, accept, members, role, switch, list."""

import json
from pathlib import Path

from coordinator.db.organization_models import OrganizationMember
from tests.harness import Coordinator
from tests.integration.test_cli_account import _berth
from tests.unit.coordinator.test_accounts_api import EMAIL, PASSWORD


async def test_orgs_invite_accept_role_switch_and_list(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": PASSWORD}
    )
    assert status == 200, body
    owner, bob = tmp_path / "owner", tmp_path / "bob"
    url = coordinator.url
    login = await _berth(
        coordinator, owner, "login", "--url", url, "--email", EMAIL, "--password-stdin",
        input=f"{PASSWORD}\n",
    )  # fmt: skip
    assert login.exit_code == 0, login.output
    invited = await _berth(coordinator, owner, "orgs", "invite", "bob@example.com")
    assert invited.exit_code == 0, invited.output
    secret = invited.stdout.strip().splitlines()[-1].strip()
    assert secret.startswith("berth_inv_")
    # Bob's account is made by the accept call; then he logs in and lists his organizations.
    status, body, _ = await coordinator.call(
        "POST", "/organization-invitations/accept", json={"token": secret, "password": PASSWORD}
    )
    assert status == 201, body
    login = await _berth(
        coordinator, bob, "login", "--url", url, "--email", "bob@example.com",
        "--password-stdin", input=f"{PASSWORD}\n",
    )  # fmt: skip
    assert login.exit_code == 0, login.output
    listed = await _berth(coordinator, bob, "--json", "orgs", "list")
    assert json.loads(listed.stdout)["currentOrganization"]["role"] == "member"
    members = await _berth(coordinator, owner, "orgs", "members")
    assert "bob@example.com" in members.stdout
    assert "member" in members.stdout
    changed = await _berth(coordinator, owner, "orgs", "role", "bob@example.com", "viewer")
    assert changed.exit_code == 0, changed.output
    assert (await OrganizationMember.get(user__email="bob@example.com")).role == "viewer"
    status, project, _ = await coordinator.call(
        "POST", "/projects", token=admin_token, json={"name": "shop"}
    )
    assert status == 201, project
    granted = await _berth(
        coordinator,
        owner,
        "orgs",
        "grant",
        "bob@example.com",
        "--project",
        f"{project['id']}=viewer",
    )
    assert granted.exit_code == 0, granted.output
    member = await OrganizationMember.get(user__email="bob@example.com")
    assert member.project_roles == {project["id"]: "viewer"}
    cleared = await _berth(coordinator, owner, "orgs", "grant", "bob@example.com", "--clear")
    assert cleared.exit_code == 0, cleared.output
    assert (await OrganizationMember.get(user__email="bob@example.com")).project_roles is None
    refused = await _berth(coordinator, bob, "orgs", "invite", "eve@example.com")
    assert refused.exit_code == 1
    assert "organization-members:write" in refused.output
    created = await _berth(coordinator, owner, "orgs", "create", "second")
    assert created.exit_code == 0, created.output
    switched = await _berth(coordinator, owner, "orgs", "switch", "second")
    assert switched.exit_code == 0, switched.output
    assert "Now acting in second as owner." in switched.stdout
    nowhere = await _berth(coordinator, bob, "orgs", "switch", "second")
    assert nowhere.exit_code == 1
    assert "no such organization" in nowhere.output
