"""The console's organization pages in a real headless Chromium against a real coordinator:
profile, invitations (the secret shown once, revoke), accepting one as a new account, members'
roles and project grants, removal, the header's organization switcher, the owner transfer, and a
member's page without the controls its role may not use. Screenshots go to
artifacts/console/<test>/."""

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.test_console_browser import _new_page
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.test_projects_api import create_project

__all__ = ["chromium_browser"]

BOB_PASSWORD = "lantern-quiver-obelisk-58"
FORBIDDEN = "does not include 'organization-members:write'"


async def _call(
    coordinator: Coordinator, method: str, path: str, body: object, token: str | None
) -> dict[str, Any]:
    status, answer, _ = await coordinator.call(method, path, token=token, json=body)
    assert status in (200, 201), answer
    assert isinstance(answer, dict)
    return answer


async def _member_row(page: Page, email: str) -> None:
    await expect(page.locator(f'#member-rows tr[data-member="{email}"]')).to_be_visible()


@pytest.mark.timeout(240)
async def test_console_organization_members_invitations_and_switch(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id = await create_project(coordinator, admin_token, "Shop")
    await _call(
        coordinator, "POST", "/organizations", {"name": "Second Org", "slug": "second"}, admin_token
    )
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.get_by_role("link", name="Organization").click()
    await expect(page.locator("#my-role")).to_have_text("owner")

    # Profile: the new name is the heading and the switcher's entry.
    profile = page.get_by_role("form", name="Organization profile")
    await profile.get_by_label("Name").fill("Acme Ltd")
    await profile.get_by_role("button", name="Save profile").click()
    await expect(page.locator("main h1")).to_have_text("Acme Ltd")

    # An invitation: the secret is shown once; another one is revoked.
    invite = page.get_by_role("form", name="Invite someone")
    await invite.get_by_label("E-mail").fill("bob@example.com")
    await invite.get_by_label("Role").select_option("member")
    await invite.get_by_role("button", name="Invite").click()
    secret = await page.locator("#invitation-secret").text_content()
    assert secret
    assert secret.startswith("berth_inv_")
    # The link: the accept page on the coordinator's own address, the secret in the fragment.
    invitation_link = await page.locator("#invitation-link").text_content()
    assert invitation_link == f"{coordinator.url}/console/accept-invitation#{secret}"
    await invite.get_by_label("E-mail").fill("carol@example.com")
    await invite.get_by_label("Role").select_option("viewer")
    await invite.get_by_role("button", name="Invite").click()
    carol = page.locator('#invitation-rows tr[data-invitation="carol@example.com"]')
    await expect(carol.locator(".invitation-status")).to_have_text("pending")
    await carol.get_by_role("button", name="Revoke the invitation for carol@example.com").click()
    await expect(carol.locator(".invitation-status")).to_have_text("revoked")
    await page.screenshot(path=shots / "organization.png", full_page=True)

    # Bob accepts in a browser of his own: a wrong secret is refused with the API's message,
    # the right one creates the account and signs him in, as a member without the admin controls.
    bob_problems: list[str] = []
    bob = await _new_page(chromium_browser, bob_problems)
    await bob.goto(coordinator.url + "/console/accept-invitation")
    accept = bob.get_by_role("form", name="Accept an invitation")
    await accept.get_by_label("Invitation secret").fill("berth_inv_not-the-secret")
    await accept.get_by_label("Your name").fill("Bob")
    await accept.get_by_label("Password").fill(BOB_PASSWORD)
    await accept.get_by_role("button", name="Create account and join").click()
    await expect(accept.get_by_role("alert")).to_be_visible()
    # Opened from the link, the secret is filled in and gone from the address bar.
    await bob.goto(invitation_link)
    accept = bob.get_by_role("form", name="Accept an invitation")
    await expect(accept.get_by_label("Invitation secret")).to_have_value(secret)
    assert bob.url == coordinator.url + "/console/accept-invitation"
    await accept.get_by_label("Your name").fill("Bob")
    await accept.get_by_label("Password").fill(BOB_PASSWORD)
    await accept.get_by_role("button", name="Create account and join").click()
    await expect(bob).to_have_url(coordinator.url + "/console/organization")
    await expect(bob.locator("main h1")).to_have_text("Acme Ltd")
    await expect(bob.locator("#my-role")).to_have_text("member")
    await _member_row(bob, "admin@example.com")
    assert await bob.get_by_role("form", name="Invite someone").count() == 0
    assert await bob.get_by_role("button", name="Remove admin@example.com").count() == 0
    assert await bob.get_by_role("form", name="Organization profile").count() == 0
    await bob.screenshot(path=shots / "member-view.png", full_page=True)

    # A control reached after the role shrank (the page was drawn for an admin): the API's 403
    # message shows in the form, and nothing is invited.
    org_id = await _org_id(coordinator, admin_token)
    bob_id = await _member_id(coordinator, admin_token, org_id, "bob@example.com")
    role_path = f"/organizations/{org_id}/members/{bob_id}/role"
    await _call(coordinator, "POST", role_path, {"role": "admin"}, admin_token)
    await bob.reload()
    bob_invite = bob.get_by_role("form", name="Invite someone")
    await bob_invite.get_by_label("E-mail").fill("erin@example.com")
    await _call(coordinator, "POST", role_path, {"role": "member"}, admin_token)
    await bob_invite.get_by_role("button", name="Invite").click()
    await expect(bob_invite.get_by_role("alert")).to_contain_text(FORBIDDEN)
    invitations = await _call(
        coordinator, "GET", f"/organizations/{org_id}/invitations", None, admin_token
    )
    assert "erin@example.com" not in [i["email"] for i in invitations["items"]]

    # Back as the owner: Bob is listed; his role changes and he is limited to one project.
    await page.reload()
    await _member_row(page, "bob@example.com")
    row = page.locator('#member-rows tr[data-member="bob@example.com"]')
    await row.get_by_label("Role of bob@example.com", exact=True).select_option("viewer")
    await row.get_by_role("button", name="Change the role of bob@example.com").click()
    await expect(row.locator(".member-role")).to_have_text("viewer")
    grants = page.get_by_role("form", name="Project grants")
    await grants.get_by_label("Member").select_option(label="bob@example.com")
    await grants.get_by_label("Every project (no limit)").uncheck()
    await grants.get_by_label("Role in Shop").select_option("viewer")
    await grants.get_by_role("button", name="Save grants").click()
    await expect(row.locator(".member-grants")).to_have_text("Shop: viewer")
    members = await _call(
        coordinator,
        "GET",
        "/organizations/" + await _org_id(coordinator, admin_token) + "/members",
        None,
        admin_token,
    )
    [bob_member] = [m for m in members["items"] if m["email"] == "bob@example.com"]
    assert bob_member["projectRoles"] == {project_id: "viewer"}

    # A member who joined through the API is removed after the confirmation.
    dave = await _call(
        coordinator,
        "POST",
        f"/organizations/{org_id}/invitations",
        {"email": "dave@example.com", "role": "member"},
        admin_token,
    )
    await _call(
        coordinator,
        "POST",
        "/organization-invitations/accept",
        {"token": dave["token"], "displayName": "Dave", "password": BOB_PASSWORD},
        None,
    )
    await page.reload()
    await page.get_by_role("button", name="Remove dave@example.com").click()
    await expect(page.locator('#member-rows tr[data-member="dave@example.com"]')).to_have_count(0)
    await _fits_phone(page, shots / "phone-organization.png")

    # The header's switcher: the app is drawn again in the other organization, and back.
    await page.locator("#org-switch").select_option(label="Second Org (owner)")
    await expect(page.locator("main h1")).to_have_text("Second Org")
    await page.locator("#org-switch").select_option(label="Acme Ltd (owner)")
    await expect(page.locator("main h1")).to_have_text("Acme Ltd")

    # The owner transfer: Bob owns Acme, the admin is an admin there now.
    transfer = page.get_by_role("form", name="Transfer ownership")
    await transfer.get_by_label("New owner").select_option(label="bob@example.com")
    await transfer.get_by_role("button", name="Transfer ownership").click()
    await expect(page.locator("#my-role")).to_have_text("admin")
    await expect(
        page.locator('#member-rows tr[data-member="bob@example.com"] .member-role')
    ).to_have_text("owner")
    assert await page.get_by_role("form", name="Transfer ownership").count() == 0
    assert _unexpected(problems) == []
    assert _unexpected(bob_problems) == []


async def _member_id(coordinator: Coordinator, token: str, org_id: str, email: str) -> str:
    members = await _call(coordinator, "GET", f"/organizations/{org_id}/members", None, token)
    [member] = [m for m in members["items"] if m["email"] == email]
    return str(member["memberId"])


async def _org_id(coordinator: Coordinator, token: str) -> str:
    context = await _call(coordinator, "GET", "/organizations/current-context", None, token)
    current = context["currentOrganization"]
    assert isinstance(current, dict)
    return str(current["organizationId"])
