"""The running containers and their usage on the console's server page, in a real headless
Chromium against a real coordinator, agent, Docker and the busybox test image: the deployed
resource's container is listed from the agent's newest sample with its resource, deployment,
CPU, memory and writable-layer size, as the API's usage inspection reports it. Screenshots go
to artifacts/console/<test>/."""

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import deployed_workload
from tests.integration.test_console_pages import (
    _api,
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]


@pytest.mark.docker
@pytest.mark.timeout(240)
async def test_console_lists_a_servers_containers_with_their_usage(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        usage_path = f"/runtime-usage/inspect?scopeKind=server&serverId={stack.server_id}"

        async def sampled() -> bool:
            usage = await _api(coordinator, admin_token, "GET", usage_path)
            return any(a["resourceId"] == stack.resource_id for a in usage["artifacts"])

        await eventually(sampled, timeout=90, what="a sample with the resource's container")
        usage = await _api(coordinator, admin_token, "GET", usage_path)
        ours = next(a for a in usage["artifacts"] if a["resourceId"] == stack.resource_id)
        assert ours["deploymentId"] == stack.deployments[0], ours

        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/servers/{stack.server_id}")
        row = page.locator(f'#container-rows tr[data-resource-id="{stack.resource_id}"]')
        await expect(row).to_have_count(1)
        await expect(row.locator("td").first).to_have_text(ours["name"])
        await expect(row.get_by_role("link", name="app")).to_have_attribute(
            "href", f"/console/resources/{stack.resource_id}"
        )
        await expect(row.locator("td").nth(2).locator("a")).to_have_attribute(
            "href", f"/console/deployments/{stack.deployments[0]}"
        )
        await expect(row.locator('[data-metric="cpu"]')).to_have_text(re.compile(r"^\d+\.\d %$"))
        await expect(row.locator('[data-metric="memory"]')).to_have_text(
            re.compile(r"^\d+\.\d MiB$")
        )
        # (The count is not compared: the Docker engine is shared, other containers come and go.)
        await expect(page.locator("#containers-note")).to_have_text(
            re.compile(r"^\d+ running, sampled .* \((live|stale)\)\.$")
        )
        await page.screenshot(path=shots / "containers.png", full_page=True)
        await _fits_phone(page, shots / "phone-containers.png")
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
