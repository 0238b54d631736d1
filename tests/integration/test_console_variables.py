"""Deleting variables and secrets in the console, in a real headless Chromium against a real
coordinator: on the resource's table (its own entries only; an inherited one links to its
environment) and on the environment's own table, each after a confirmation; a delete the API
refuses shows its message. Screenshots go to artifacts/console/<test>/."""

from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, expect

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


async def _post(coordinator: Coordinator, token: str, path: str, body: dict[str, Any]) -> None:
    status, answer, _ = await coordinator.call("POST", path, token=token, json=body)
    assert status in (200, 201), answer


async def _keys(coordinator: Coordinator, token: str, path: str, field: str) -> set[str]:
    return {entry["key"] for entry in (await _api(coordinator, token, "GET", path))[field]}


@pytest.mark.timeout(180)
async def test_console_deletes_resource_and_environment_variables_and_secrets(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    env_vars = f"/environments/{environment_id}/variables"
    await _post(
        coordinator, admin_token, env_vars, {"key": "MODE", "value": "slow", "exposure": "runtime"}
    )
    await _post(
        coordinator,
        admin_token,
        env_vars,
        {
            "key": "DB_PASS",
            "value": "hunter-22",
            "exposure": "runtime",
            "kind": "secret",
            "isSecret": True,
        },
    )
    own = f"/resources/{resource_id}"
    await _post(
        coordinator,
        admin_token,
        own + "/variables",
        {"key": "LEVEL", "value": "3", "exposure": "runtime"},
    )
    await _post(
        coordinator, admin_token, own + "/secrets", {"key": "API_KEY", "value": "s3cr3t-value"}
    )
    effective = own + "/effective-config"
    assert await _keys(coordinator, admin_token, effective, "effectiveEntries") == {
        "MODE", "DB_PASS", "LEVEL", "API_KEY"
    }  # fmt: skip
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    asked: list[str] = []

    def note(dialog: Dialog) -> None:
        asked.append(dialog.message)

    page.on("dialog", note)

    # The resource's table: its own secret and variable are deleted after a confirmation; the
    # environment's entries have no delete button here, only a link to the environment.
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}")
    rows = page.locator("#config-rows")
    await expect(rows.locator("tr")).to_have_count(4)
    inherited = rows.locator('tr[data-key="MODE"]')
    await expect(inherited.get_by_role("button")).to_have_count(0)
    await expect(inherited.get_by_role("link", name="on the environment")).to_be_visible()
    await expect(rows.locator('tr[data-key="API_KEY"]')).to_contain_text("****")
    await page.screenshot(path=shots / "resource-before.png", full_page=True)
    await rows.get_by_role("button", name="Delete API_KEY").click()
    await expect(rows.locator('tr[data-key="API_KEY"]')).to_have_count(0)
    assert any("Delete secret API_KEY?" in message for message in asked), asked
    await rows.get_by_role("button", name="Delete LEVEL").click()
    await expect(rows.locator('tr[data-key="LEVEL"]')).to_have_count(0)
    await expect(rows.locator("tr")).to_have_count(2)
    assert await _keys(coordinator, admin_token, effective, "effectiveEntries") == {
        "MODE", "DB_PASS"
    }  # fmt: skip
    assert await models.AuditEvent.filter(aggregate_id=resource_id).count() > 0

    # The environment's own table: set one from the form, delete the secret, and a delete of an
    # entry already gone (removed through the API meanwhile) shows the API's refusal.
    await inherited.get_by_role("link", name="on the environment").click()
    table = page.locator("#env-config-rows")
    await expect(table.locator("tr[data-key]")).to_have_count(2)
    await expect(table.locator('tr[data-key="DB_PASS"]')).to_contain_text("****")
    form = page.get_by_role("form", name="Set an environment variable")
    await form.get_by_label("Key").fill("REGION")
    await form.get_by_label("Value").fill("eu-west")
    await form.get_by_label("Secret").uncheck()
    await form.get_by_role("button", name="Set").click()
    await expect(table.locator('tr[data-key="REGION"]')).to_contain_text("eu-west")
    await table.get_by_role("button", name="Delete DB_PASS (runtime)").click()
    await expect(table.locator('tr[data-key="DB_PASS"]')).to_have_count(0)
    assert any("Delete DB_PASS (runtime) from the environment?" in m for m in asked), asked
    status, body, _ = await coordinator.call(
        "DELETE", env_vars + "/MODE", token=admin_token, json={"exposure": "runtime"}
    )
    assert status == 200, body
    await table.get_by_role("button", name="Delete MODE (runtime)").click()
    await expect(page.locator("#env-config-status").get_by_role("alert")).to_be_visible()
    await expect(table.locator('tr[data-key="MODE"]')).to_have_count(0)
    await page.screenshot(path=shots / "environment-after.png", full_page=True)
    shown = await _api(coordinator, admin_token, "GET", f"/environments/{environment_id}")
    assert {entry["key"] for entry in shown["maskedVariables"]} == {"REGION"}
    await _fits_phone(page, shots / "phone-environment.png")
    assert _unexpected(problems) == []
