"""A storage volume's runtime cleanup from the console's storage page, in a real headless Chromium
against a real coordinator, agent and Docker: the API's refusal for a volume never deployed is
shown; while attached the Docker volume is listed as blocked; detached and redeployed, the dry
run lists it and removes nothing, and the confirmed cleanup removes it (checked with the Docker
client). Screenshots go to artifacts/console/<test>/."""

from pathlib import Path

import docker
import docker.errors
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.stacks import workload
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]


def _exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_cleans_a_volume_left_on_its_server_after_a_dry_run(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    volume_id = ""
    try:
        created = await stack.call(
            "POST",
            "/storage-volumes",
            {
                "projectId": stack.project_id,
                "environmentId": stack.environment_id,
                "name": "data",
                "kind": "named-volume",
            },
        )
        volume_id = str(created["id"])
        name = f"berth-{volume_id.lower()}"
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/environments/{stack.environment_id}/storage")
        clean = page.get_by_role("button", name="Clean up volume data")
        status = page.locator("#storage-status")
        shown = page.locator("#volume-cleanup")

        # Never deployed: no server holds its data, and the API says so.
        await clean.click()
        await expect(shown.get_by_role("alert")).to_contain_text("never deployed")

        # Attached and deployed: the Docker volume exists and is blocked, nothing offered.
        attached = await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/storage-attachments",
            {"storageVolumeId": volume_id, "destinationPath": "/data"},
        )
        await stack.deploy()
        assert _exists(docker_client, name)
        await clean.click()
        await expect(shown.locator(f'li[data-target="{name}"]')).to_have_attribute(
            "data-action", "blocked"
        )
        await expect(shown).to_contain_text("active-attachment")
        await expect(page.locator("#cleanup-confirm")).to_have_count(0)

        # Detached and redeployed without it: the dry run lists it and removes nothing.
        await stack.call(
            "DELETE",
            f"/resources/{stack.resource_id}/storage-attachments/{attached['id']}",
        )
        await stack.deploy()
        await clean.click()
        await expect(shown.locator(f'li[data-target="{name}"]')).to_have_attribute(
            "data-action", "matched"
        )
        await expect(shown.locator("[data-dry-run]")).to_have_attribute("data-dry-run", "true")
        assert _exists(docker_client, name)
        await page.screenshot(path=shots / "cleanup-dry-run.png", full_page=True)

        # Confirmed (the page's dialog handler accepts): the Docker volume is gone.
        await page.locator("#cleanup-confirm").click()
        await expect(shown.locator("[data-dry-run]")).to_have_attribute("data-dry-run", "false")
        await expect(shown.locator(f'li[data-target="{name}"]')).to_have_attribute(
            "data-action", "removed"
        )
        # The API answers after the agent removed it: no waiting needed.
        assert not _exists(docker_client, name)
        await expect(status).to_be_empty()
        await page.screenshot(path=shots / "cleanup-applied.png", full_page=True)
        await _fits_phone(page, shots / "phone-cleanup.png")
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        if volume_id and _exists(docker_client, f"berth-{volume_id.lower()}"):
            docker_client.volumes.get(f"berth-{volume_id.lower()}").remove(force=True)
