"""Creating and deleting organizations in the console, in a real headless Chromium against a real
coordinator: a refused slug and a taken one show the API's message, a created organization is
switched to; deleting needs the name typed, an organization with a server and a resource lists
them as blockers and stays, an empty one is deleted and the console switches back. Screenshots
go to artifacts/console/<test>/."""

import pytest
from playwright.async_api import Browser, Page, expect

from coordinator.db import models
from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.test_console_pages import (
    _api,
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.test_resources_api import create_resource, workspace

__all__ = ["chromium_browser"]


async def _switcher_shows(page: Page, name: str) -> None:
    await expect(page.locator("#org-switch option:checked")).to_contain_text(name)


@pytest.mark.timeout(180)
async def test_console_creates_switches_to_and_deletes_an_organization(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    server = await coordinator.add_server(admin_token, "edge-1")
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    home = await _api(coordinator, admin_token, "GET", "/organizations/org_default/profile")
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.get_by_role("link", name="Organization").click()
    await expect(page.locator("main h1")).to_have_text(home["name"])

    # A slug the API refuses, then a good one: created, and the console acts in it at once.
    create = page.get_by_role("form", name="Create an organization")
    await create.get_by_label("Organization name").fill("Side Shop")
    await create.get_by_label("Organization slug").fill("Not A Slug")
    await create.get_by_role("button", name="Create and switch").click()
    await expect(create.get_by_role("alert")).to_contain_text("slug")
    await create.get_by_label("Organization slug").fill("side-shop")
    await create.get_by_role("button", name="Create and switch").click()
    await expect(page.locator("main h1")).to_have_text("Side Shop")
    await expect(page.locator("#my-role")).to_have_text("owner")
    await _switcher_shows(page, "Side Shop")
    # (An API token sees only its own organization: the rows are read directly.)
    side = await models.Organization.get(slug="side-shop")
    # The same slug again: the 409 is shown and nothing new is made.
    create = page.get_by_role("form", name="Create an organization")
    await create.get_by_label("Organization name").fill("Side Shop 2")
    await create.get_by_label("Organization slug").fill("side-shop")
    await create.get_by_role("button", name="Create and switch").click()
    await expect(create.get_by_role("alert")).to_be_visible()
    assert await models.Organization.filter(deleted_at__isnull=True).count() == 2
    await page.screenshot(path=shots / "created.png", full_page=True)

    # Back in the first organization: deleting waits for the exact name, then is refused with
    # the server and the resource that block it, each linked; nothing is deleted.
    await page.locator("#org-switch").select_option("org_default")
    await expect(page.locator("main h1")).to_have_text(home["name"])
    remove = page.get_by_role("form", name="Delete organization")
    button = remove.get_by_role("button", name="Delete organization")
    await expect(button).to_be_disabled()
    await remove.get_by_label(f"Type {home['name']} to confirm").fill(home["name"] + "x")
    await expect(button).to_be_disabled()
    await remove.get_by_label(f"Type {home['name']} to confirm").fill(home["name"])
    await button.click()
    await expect(remove.get_by_role("alert")).to_contain_text("still has servers or resources")
    blockers = remove.locator("#delete-blockers")
    await expect(blockers.locator('li[data-kind="server"] a')).to_have_text(server["id"])
    await expect(blockers.locator('li[data-kind="resource"] a')).to_have_attribute(
        "href", f"/console/resources/{resource_id}"
    )
    await page.screenshot(path=shots / "delete-blocked.png", full_page=True)
    shown = await _api(coordinator, admin_token, "GET", "/organizations/org_default/profile")
    assert shown["organizationId"] == "org_default"

    # The empty one is deleted; the console switches to the organization left.
    await page.locator("#org-switch").select_option(side.id)
    await expect(page.locator("main h1")).to_have_text("Side Shop")
    remove = page.get_by_role("form", name="Delete organization")
    await remove.get_by_label("Type Side Shop to confirm").fill("Side Shop")
    await remove.get_by_role("button", name="Delete organization").click()
    await expect(page.locator("main h1")).to_have_text(home["name"])
    await _switcher_shows(page, home["name"])
    await expect(page.locator("#org-switch option")).to_have_count(1)
    live = await models.Organization.filter(deleted_at__isnull=True)
    assert [o.id for o in live] == ["org_default"]
    assert await models.AuditEvent.exists(event_type="organization.deleted", aggregate_id=side.id)
    await _fits_phone(page, shots / "phone-organization.png")
    assert _unexpected(problems) == []
