"""Domain redirects and ownership confirmation on the console's domains page, in a real headless
Chromium against a real coordinator: a binding added with ``redirectTo`` + ``redirectStatus``
(stored and shown; an unknown target is the API's refusal) and changed afterwards (a status,
a loop refused, back to serving), the HTTP token requested (the URL
and token shown are the API's), and the manual override (a missing reason is refused; with one
it is confirmed and the reason is in the audit event). Screenshots go to
artifacts/console/<test>/."""

import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.test_console_pages import _api, _signed_in, _unexpected, chromium_browser
from tests.unit.coordinator.test_resources_api import create_resource, workspace

__all__ = ["chromium_browser"]

APEX = "app.example.test"
WWW = "www.example.test"


@pytest.mark.timeout(180)
async def test_console_domain_redirects_and_ownership_confirmation(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    server = await coordinator.add_server(admin_token, "edge-1", host="203.0.113.10")
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}/domains")
    add = page.get_by_role("form", name="Add a domain")

    async def bind(domain: str, redirect_to: str = "", status: str = "") -> None:
        await add.get_by_label("Domain name").fill(domain)
        await add.get_by_label("Server").select_option(server["id"])
        await add.get_by_label("Redirect to").fill(redirect_to)
        await add.get_by_label("Redirect status").select_option(status)
        await add.get_by_role("button", name="Add domain").click()

    async def stored(domain: str) -> dict[str, object]:
        listed = await _api(
            coordinator, admin_token, "GET", f"/domain-bindings?resourceId={resource_id}"
        )
        [binding] = [b for b in listed["items"] if b["domainName"] == domain]
        shown = await _api(coordinator, admin_token, "GET", f"/domain-bindings/{binding['id']}")
        found: dict[str, object] = shown["binding"]
        return found

    # A redirect to a domain nobody bound: the API's refusal in the form, nothing stored.
    await bind(WWW, "nowhere.example.test", "308")
    await expect(add.get_by_role("alert")).to_contain_text("nowhere.example.test")
    await expect(page.locator("#domains")).to_contain_text("No domains bound yet.")

    await bind(APEX)
    apex_row = page.locator(f'#domain-rows tr[data-domain="{APEX}"]')
    await expect(apex_row).to_be_visible()
    await bind(WWW, APEX, "308")
    www_row = page.locator(f'#domain-rows tr[data-domain="{WWW}"]')
    redirect = www_row.locator(".redirect")
    await expect(redirect).to_have_attribute("data-redirect-to", APEX)
    await expect(redirect).to_have_attribute("data-redirect-status", "308")
    www = await stored(WWW)
    assert (www["redirectTo"], www["redirectStatus"]) == (APEX, 308), www
    assert (await stored(APEX))["redirectTo"] is None
    await expect(apex_row.locator(".redirect")).to_have_count(0)

    # The route changed after binding: 302, then a loop refused (apex -> www -> apex), then
    # www serves again (no target).
    www_route = page.get_by_role("form", name=f"Route of {WWW}")
    await www_route.get_by_label(f"Redirect status of {WWW}").select_option("302")
    await www_route.get_by_role("button", name="Save route").click()
    await expect(redirect).to_have_attribute("data-redirect-status", "302")
    assert (await stored(WWW))["redirectStatus"] == 302
    apex_route = page.get_by_role("form", name=f"Route of {APEX}")
    await apex_route.get_by_label(f"Redirect {APEX} to").fill(WWW)
    await apex_route.get_by_role("button", name="Save route").click()
    await expect(page.locator("#domain-status").get_by_role("alert")).to_contain_text("loop")
    assert (await stored(APEX))["redirectTo"] is None
    await www_route.get_by_label(f"Redirect {WWW} to").fill("")
    await www_route.get_by_role("button", name="Save route").click()
    await expect(www_row.locator(".redirect")).to_have_count(0)
    assert (await stored(WWW))["redirectTo"] is None
    await www_route.get_by_label(f"Redirect {WWW} to").fill(APEX)
    await www_route.get_by_role("button", name="Save route").click()
    await expect(redirect).to_have_attribute("data-redirect-to", APEX)

    # The HTTP token: recorded, not yet confirmed; the URL and token shown are the API's.
    await page.get_by_role("button", name=f"Serve the HTTP token of {APEX}").click()
    ownership = apex_row.locator(".ownership")
    await expect(ownership).to_have_attribute("data-method", "http-token")
    apex = await stored(APEX)
    proof = apex["ownership"]
    assert isinstance(proof, dict)
    assert (proof["method"], proof["confirmedAt"]) == ("http-token", None), proof
    await expect(ownership.locator(".ownership-http")).to_have_text(
        f"http://{APEX}{proof['httpPath']}"
    )
    await expect(ownership).to_contain_text(proof["token"])
    await expect(ownership).to_have_attribute("data-confirmed", "false")
    await expect(
        apex_row.get_by_role("button", name=f"Serve the HTTP token of {APEX}")
    ).to_have_count(0)
    await page.screenshot(path=shots / "http-token.png", full_page=True)

    # The manual override: an empty reason is refused by the API; with one it is confirmed.
    override = page.get_by_role("form", name=f"Override the ownership check of {WWW}")
    await override.get_by_role("button", name="Override").click()
    await expect(page.locator("#domain-status")).to_contain_text("reason")
    assert (await stored(WWW))["status"] == "pending_verification"
    await override.get_by_role("textbox").fill("DNS hosted by a partner")
    await override.get_by_role("button", name="Override").click()
    await expect(www_row.locator(".ownership")).to_have_attribute("data-confirmed", "true")
    await expect(www_row.locator(".ownership-state")).to_have_text("confirmed (manual)")
    await expect(www_row.locator(".binding-status")).to_contain_text("bound")
    www = await stored(WWW)
    assert www["status"] == "bound", www
    events = await _api(
        coordinator,
        admin_token,
        "GET",
        f"/audit-events?aggregateId={www['id']}&eventType=domain-binding.ownership-confirmed",
    )
    [event] = events["items"]
    assert event["payload"]["method"] == "manual", event
    assert event["payload"]["reason"] == "DNS hosted by a partner", event
    await expect(override).to_have_count(0)
    await page.screenshot(path=shots / "override.png", full_page=True)
    assert _unexpected(problems) == []
