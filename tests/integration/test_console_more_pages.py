"""The console's last capability pages in a real headless Chromium against a real coordinator:
volume backups (with a real agent + Docker), DNS providers and wildcard certificates, the
default access domain policy. Each page shows the API's 4xx message. Screenshots go to
artifacts/console/<test>/."""

from pathlib import Path

import docker
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import workload
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.integration.test_volume_backups_e2e import WRITER, _files, _leftovers, _sh, _volume

__all__ = ["chromium_browser"]


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_backs_up_and_restores_a_volume(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        volume_id = await _volume(stack, "data")
        other_id = await _volume(stack, "copy")
        await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/storage-attachments",
            {"storageVolumeId": volume_id, "destinationPath": "/data"},
        )
        await stack.deploy()

        async def written() -> bool:
            return len(_files(docker_client, volume_id)) == 2

        await eventually(written, timeout=30, what="the app to write its files")
        original = _files(docker_client, volume_id)

        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}/storage")
        section = page.locator("section", has=page.locator("#volume-backups-title"))
        await section.get_by_label("Volume to back up").select_option(label="data")
        await expect(page.locator("#volume-backups")).to_contain_text("No backups of this volume")

        # Back up now with the app stopped for the copy: the row follows it until ready.
        await section.get_by_label("Stop the app during the copy", exact=False).check()
        await section.get_by_role("button", name="Back up volume now").click()
        row = page.locator("#volume-backup-rows tbody tr").first
        await expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
        await expect(row.locator(".backup-size")).not_to_have_text("\N{EN DASH}")
        await expect(row).to_contain_text("yes")

        # Restore: refused without the acknowledgement (the API's message shown), then done.
        _sh(docker_client, volume_id, "rm -rf /v/notes && echo changed > /v/a.txt")
        restore = page.get_by_role("form", name="Restore a volume backup")
        await restore.get_by_role("button", name="Restore volume").click()
        await expect(restore.get_by_role("alert")).to_contain_text("acknowledgeDataOverwrite")
        await restore.get_by_label("Replace the volume's files", exact=False).check()
        await restore.get_by_role("button", name="Restore volume").click()
        restored = row.locator(".backup-restore")
        await expect(restored).to_have_attribute("data-restore", "ready", timeout=120_000)
        assert _files(docker_client, volume_id) == original

        # Restore into another (new, unplaced) named volume.
        backup_id = await row.get_attribute("data-backup")
        await restore.get_by_label("Into").select_option(label="copy (another volume)")
        await restore.get_by_label("Replace the volume's files", exact=False).check()
        await restore.get_by_role("button", name="Restore volume").click()

        async def copied() -> bool:
            shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
            attempt = shown["backup"]["latestRestoreAttempt"]
            assert attempt["status"] != "failed", attempt
            return bool(
                attempt["targetStorageVolumeId"] == other_id and attempt["status"] == "ready"
            )

        await eventually(copied, timeout=120, what="the backup restored into the other volume")
        assert _files(docker_client, other_id) == original
        await page.screenshot(path=shots / "volume-backups.png", full_page=True)
        await _fits_phone(page, shots / "phone-volume-backups.png")
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        assert _leftovers(docker_client) == []
