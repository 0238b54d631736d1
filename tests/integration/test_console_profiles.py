"""A resource's runtime, network, access and health profiles in the console, in a real headless
Chromium against a real coordinator: shown with their defaults, changed, the API's refusals
shown beside the refused field (nothing stored), the health check reset; a member whose role
shrank to viewer gets the 403 in the form, then sees the profiles read-only. Screenshots go to
artifacts/console/<test>/."""

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.test_console_browser import _new_page
from tests.integration.test_console_pages import (
    _api,
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.test_organizations_api import ORG, PASSWORD, _join
from tests.unit.coordinator.test_resources_api import create_resource, workspace

__all__ = ["chromium_browser"]

MIB = 1024 * 1024


async def _shown(coordinator: Coordinator, token: str, resource_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await _api(coordinator, token, "GET", f"/resources/{resource_id}")
    return body


def _problem(form: Any, name: str) -> Any:
    return form.locator(f'[data-field="{name}"] .field-problem')


async def _save(form: Any) -> None:
    await form.get_by_role("button", name="Save").click()


async def _password_sign_in(page: Page, coordinator: Coordinator, email: str) -> None:
    await page.goto(coordinator.url + "/console/")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(coordinator.url + "/console/servers")


@pytest.mark.timeout(180)
async def test_console_edits_runtime_network_and_health_profiles(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}")
    await page.get_by_role("link", name="Runtime, network, access and health").click()

    # Runtime: the defaults are shown; a refused replica count is explained beside its field
    # and nothing is stored; then a valid profile is saved whole.
    runtime = page.get_by_role("form", name="Runtime profile")
    await expect(runtime.get_by_label("Replicas")).to_have_value("1")
    await expect(runtime.get_by_label("Rollout")).to_have_value("blue-green")
    await runtime.get_by_label("Replicas").fill("50")
    await _save(runtime)
    await expect(_problem(runtime, "replicas")).to_contain_text("less than or equal to 20")
    await expect(runtime.get_by_label("Replicas")).to_have_attribute("aria-invalid", "true")
    await expect(runtime.get_by_role("alert")).to_contain_text("runtimeProfile.replicas")
    assert (await _shown(coordinator, admin_token, resource_id))["runtimeProfile"]["replicas"] == 1
    await runtime.get_by_label("Replicas").fill("2")
    await runtime.get_by_label("Start command").fill("httpd -f -p 8080")
    await runtime.get_by_label("Memory limit (MiB)").fill("64")
    await runtime.get_by_label("Rollout").select_option("recreate")
    await _save(runtime)
    await expect(runtime.get_by_role("status")).to_contain_text("Runtime profile saved")
    await expect(_problem(runtime, "replicas")).to_be_empty()
    stored = (await _shown(coordinator, admin_token, resource_id))["runtimeProfile"]
    assert stored["replicas"] == 2
    assert stored["startCommand"] == "httpd -f -p 8080"
    assert stored["memoryBytes"] == 64 * MIB
    assert stored["rolloutStrategy"] == "recreate"
    assert stored["strategy"] == "auto"

    # Network: a port out of range is refused beside it; a good one is stored.
    network = page.get_by_role("form", name="Network profile")
    await network.get_by_label("Container port").fill("70000")
    await _save(network)
    await expect(_problem(network, "internalPort")).to_contain_text("less than or equal to 65535")
    await network.get_by_label("Container port").fill("8080")
    await _save(network)
    await expect(network.get_by_role("status")).to_contain_text("Network profile saved")
    stored = (await _shown(coordinator, admin_token, resource_id))["networkProfile"]
    assert stored["internalPort"] == 8080
    assert stored["exposureMode"] == "reverse-proxy"

    # Access: a prefix the API refuses, then generated routes switched off under a prefix.
    access = page.get_by_role("form", name="Access profile")
    await expect(access.get_by_label("Generated access route")).to_have_value("inherit")
    await access.get_by_label("Path prefix").fill("/has space")
    await _save(access)
    await expect(_problem(access, "pathPrefix")).to_contain_text("should match pattern")
    await access.get_by_label("Path prefix").fill("/shop")
    await access.get_by_label("Generated access route").select_option("disabled")
    await _save(access)
    await expect(access.get_by_role("status")).to_contain_text("Access profile saved")
    stored = (await _shown(coordinator, admin_token, resource_id))["accessProfile"]
    assert (stored["generatedAccessMode"], stored["pathPrefix"]) == ("disabled", "/shop")

    # Health: a path without its leading slash is refused beside it (nested field name).
    health = page.get_by_role("form", name="Health check")
    await health.get_by_label("Path").fill("healthz")
    await _save(health)
    await expect(_problem(health, "http.path")).to_contain_text("should match pattern")
    await health.get_by_label("Path").fill("/healthz")
    await health.get_by_label("Retries").fill("3")
    await health.get_by_label("Expected status (empty: any 2xx/3xx)").fill("204")
    await _save(health)
    await expect(health.get_by_role("status")).to_contain_text("Health check saved")
    policy = (await _shown(coordinator, admin_token, resource_id))["healthPolicy"]
    assert (policy["http"]["path"], policy["http"]["expectedStatusCode"]) == ("/healthz", 204)
    assert policy["retries"] == 3
    await page.screenshot(path=shots / "profiles.png", full_page=True)

    # What was saved is what a fresh drawing shows.
    await page.reload()
    runtime = page.get_by_role("form", name="Runtime profile")
    await expect(runtime.get_by_label("Replicas")).to_have_value("2")
    await expect(runtime.get_by_label("Memory limit (MiB)")).to_have_value("64")
    health = page.get_by_role("form", name="Health check")
    await expect(health.get_by_label("Path")).to_have_value("/healthz")

    # Reset (after the confirmation): the defaults are back, in the form and in the API.
    await health.get_by_role("button", name="Reset to defaults").click()
    health = page.get_by_role("form", name="Health check")
    await expect(health.get_by_label("Path")).to_have_value("/")
    await expect(health.get_by_label("Retries")).to_have_value("10")
    policy = (await _shown(coordinator, admin_token, resource_id))["healthPolicy"]
    assert (policy["http"]["path"], policy["retries"]) == ("/", 10)
    await _fits_phone(page, shots / "phone-profiles.png")
    # A resource that does not exist: both new resource pages show the API's 404 message.
    for address in ("/resources/res_doesnotexist/profiles", "/resources/res_doesnotexist/source"):
        await page.goto(f"{coordinator.url}/console{address}")
        await expect(page.locator("main > [role=alert]")).to_contain_text("not found")
    assert _unexpected(problems) == []

    # A member draws the page (editable), then its role shrinks to viewer: its save shows the
    # API's 403 and stores nothing; drawn again, the page is read-only.
    member = await _join(coordinator, admin_token, "vera@example.com", "member")
    vera_problems: list[str] = []
    vera = await _new_page(chromium_browser, vera_problems)
    await _password_sign_in(vera, coordinator, "vera@example.com")
    await vera.goto(f"{coordinator.url}/console/resources/{resource_id}/profiles")
    network = vera.get_by_role("form", name="Network profile")
    await expect(network.get_by_label("Container port")).to_be_editable()
    status, body, _ = await coordinator.call(
        "POST",
        f"{ORG}/members/{member['memberId']}/role",
        token=admin_token,
        json={"role": "viewer"},
    )
    assert status == 200, body
    await network.get_by_label("Container port").fill("9090")
    await _save(network)
    await expect(network.get_by_role("alert")).to_contain_text("resources:write")
    stored = (await _shown(coordinator, admin_token, resource_id))["networkProfile"]
    assert stored["internalPort"] == 8080
    await vera.reload()
    await expect(vera.locator("#profiles-read-only")).to_contain_text("viewer")
    network = vera.get_by_role("form", name="Network profile")
    await expect(network.get_by_label("Container port")).to_have_value("8080")
    await expect(network.get_by_label("Container port")).to_be_disabled()
    await expect(network.get_by_role("button", name="Save")).to_be_disabled()
    await vera.screenshot(path=shots / "viewer-profiles.png", full_page=True)
    assert _unexpected(vera_problems) == []
