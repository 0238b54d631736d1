"""The storage page's volume backup policy and volume backup verification in a real headless
Chromium against a real coordinator and agent and a real Docker volume: a policy set through
the form (its verifyAfterBackup box ticked, then not) is stored (read back through the API) and
shown; a form the API refuses shows the
envelope's message and stores nothing; a backup taken from the page shows its manifest, and
Verify restores it into a throwaway volume on the agent and shows "passed" with the counted
files, on the list and on the backup's own page, and "failed" with the reason once the stored
artifact is damaged; a viewer sees all of it with the controls disabled. The backup-targets
page reads ``/servers`` once per visit. Screenshots go to artifacts/console/<test>/."""

from pathlib import Path

import docker
import pytest
from playwright.async_api import Browser, Request, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.backup_stacks import WRITER, _leftovers, written_volume
from tests.integration.stacks import workload
from tests.integration.test_console_browser import _new_page
from tests.integration.test_console_operator_work import _password_sign_in
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.test_organizations_api import _join

__all__ = ["chromium_browser"]

pytestmark = pytest.mark.docker


@pytest.mark.timeout(360)
async def test_console_sets_a_volume_policy_and_verifies_a_volume_backup(
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
        volume_id, _ = await written_volume(stack, docker_client)
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}/storage")
        section = page.locator("section", has=page.locator("#volume-backups-title"))
        await section.get_by_label("Volume to back up").select_option(label="data")
        summary = page.locator("#volume-policy-summary")
        await expect(summary).to_contain_text("No volume backup policy")

        # A value the API refuses: its envelope's message is shown beside the form, nothing stored.
        form = page.get_by_role("form", name="Scheduled backups of this volume (policy)")
        await form.get_by_label("Every (hours)").fill("9000")
        await form.get_by_label("Every (hours)").evaluate("e => e.removeAttribute('max')")
        await form.get_by_role("button", name="Save volume policy").click()
        await expect(form.get_by_role("alert")).to_contain_text("scheduleIntervalHours")
        query = f"/storage-volumes/backup-policies?storageVolumeId={volume_id}"
        assert (await stack.call("GET", query))["items"] == []

        # Set through the form: stored as sent, and listed on the page.
        await form.get_by_label("Every (hours)").fill("6")
        await form.get_by_label("Keep for (days)").fill("10")
        await form.get_by_label("Keep at most (backups)").fill("3")
        await form.get_by_label("Retry a failed scheduled backup").uncheck()
        await form.get_by_label("Stop the app during each copy (stopResource)").check()
        verify = form.get_by_label("Verify each scheduled backup once ready (verifyAfterBackup)")
        await expect(verify).not_to_be_checked()
        await verify.check()
        await form.get_by_role("button", name="Save volume policy").click()
        await expect(form.locator(".form-status")).to_contain_text("Volume policy saved.")
        await expect(summary).to_contain_text("enabled, every 6 h, kept 10 days, at most 3")
        await expect(summary).to_contain_text("the app is stopped for each copy")
        await expect(summary).to_contain_text("kept in the coordinator's storage")
        await expect(summary).to_contain_text("each backup verified once ready")
        [stored] = (await stack.call("GET", query))["items"]
        assert (
            stored["scheduleIntervalHours"],
            stored["retentionDays"],
            stored["keepCount"],
            stored["retryOnFailure"],
            stored["enabled"],
            stored["stopResource"],
            stored["backupTargetId"],
            stored["verifyAfterBackup"],
        ) == (6, 10, 3, False, True, True, None, True)
        assert stored["nextRunAt"] is not None
        shown_policy = summary.locator("[data-policy]")
        await expect(shown_policy).to_have_attribute("data-policy", stored["id"])

        # Changed (disabled, not verified): the same policy, replaced; the form shows it after a
        # reload, and its verification box as stored.
        await form.get_by_label("Enabled").uncheck()
        await verify.uncheck()
        await form.get_by_role("button", name="Save volume policy").click()
        await expect(summary).to_contain_text("Policy: disabled, every 6 h")
        await expect(summary).to_contain_text("not verified automatically")
        [changed] = (await stack.call("GET", query))["items"]
        assert (changed["id"], changed["enabled"]) == (stored["id"], False)
        assert changed["verifyAfterBackup"] is False
        assert int(changed["version"]) > int(stored["version"])
        await page.reload()
        await expect(summary).to_contain_text("Policy: disabled")
        await expect(form.get_by_label("Every (hours)")).to_have_value("6")
        await expect(form.get_by_label("Retry a failed scheduled backup")).not_to_be_checked()
        await expect(verify).not_to_be_checked()

        # Verified again from the page: saved with the box ticked, which a reload shows ticked.
        await verify.check()
        await form.get_by_role("button", name="Save volume policy").click()
        await expect(summary).to_contain_text("each backup verified once ready")
        [again] = (await stack.call("GET", query))["items"]
        assert (again["id"], again["enabled"], again["verifyAfterBackup"]) == (
            stored["id"],
            False,
            True,
        )
        await page.reload()
        await expect(verify).to_be_checked()

        # A backup from the page: ready, with the manifest the agent counted.
        await section.get_by_role("button", name="Back up volume now").click()
        row = page.locator("#volume-backup-rows tbody tr").first
        await expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
        backup_id = await row.get_attribute("data-backup")
        assert backup_id is not None
        shown = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
        assert shown["manifest"]["files"] == 2
        await expect(row.locator(".backup-contents")).to_contain_text("2 file(s)")
        verification = row.locator(".backup-verification")
        await expect(verification).to_have_attribute("data-verification", "none")

        # Verify: pending, then passed, shown by the list's own polling.
        await row.get_by_role("button", name=f"Verify the volume backup {backup_id}").click()
        await expect(verification).to_have_attribute("data-verification", "passed", timeout=90_000)
        await expect(verification).to_contain_text("passed: 2 file(s)")
        verified = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
        assert verified["verification"]["status"] == "passed"
        assert verified["verification"]["files"] == verified["manifest"]["files"] == 2
        await page.screenshot(path=shots / "storage.png", full_page=True)

        # The backup's own page: manifest facts, the verification, and Verify again from there.
        await row.get_by_role("link", name=f"Backup {backup_id}").click()
        await expect(page.locator("#manifest-files")).to_have_text("2")
        assert (
            await page.locator("#manifest-paths-sha256").inner_text()
            == (verified["manifest"]["pathsSha256"])
        )
        facts = page.locator("#verification-facts")
        await expect(facts).to_have_attribute("data-verification", "passed")
        first_check = verified["verification"]["checkedAt"]
        await page.get_by_role("button", name=f"Verify the volume backup {backup_id}").click()

        async def checked_again() -> bool:
            again = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
            v = again["verification"]
            return bool(v["status"] == "passed" and v["checkedAt"] != first_check)

        await eventually(checked_again, timeout=90, what="the second verification to pass")
        await expect(facts).to_have_attribute("data-verification", "passed", timeout=10_000)
        await expect(page.locator("#verification-result")).to_contain_text("passed: 2 file(s)")
        await page.screenshot(path=shots / "backup.png", full_page=True)

        # Flipped bytes in the stored artifact: Verify again shows "failed" and the reason.
        artifact = coordinator.settings().data_dir / "backups" / f"{backup_id}.berthbk"
        raw = bytearray(artifact.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        artifact.write_bytes(bytes(raw))
        await page.get_by_role("button", name=f"Verify the volume backup {backup_id}").click()
        await expect(facts).to_have_attribute("data-verification", "failed", timeout=90_000)
        await expect(facts).to_contain_text("Reason")
        await expect(facts.locator("dd.error")).to_contain_text("artifact-damaged")
        damaged = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
        assert damaged["verification"]["status"] == "failed"
        assert damaged["verification"]["message"].startswith("artifact-damaged")
        await page.screenshot(path=shots / "backup-failed.png", full_page=True)
        await _fits_phone(page, shots / "phone-backup.png")
        assert _unexpected(problems) == []
        assert _leftovers(docker_client) == []

        # A viewer: the policy and the verification are shown, their controls disabled.
        viewer_problems: list[str] = []
        viewer = await _new_page(chromium_browser, viewer_problems)
        await _join(coordinator, admin_token, "vic@example.com", "viewer")
        await _password_sign_in(viewer, coordinator, "vic@example.com")
        await viewer.goto(f"{coordinator.url}/console/resources/{stack.resource_id}/storage")
        await expect(viewer.locator("#volume-policy-summary")).to_contain_text("Policy: disabled")
        await expect(viewer.locator("#volume-policy-read-only")).to_be_visible()
        viewer_form = viewer.get_by_role("form", name="Scheduled backups of this volume (policy)")
        await expect(viewer_form.get_by_role("button", name="Save volume policy")).to_be_disabled()
        viewer_row = viewer.locator("#volume-backup-rows tbody tr").first
        await expect(viewer_row.locator(".backup-verification")).to_contain_text("failed")
        await expect(
            viewer_row.get_by_role("button", name=f"Verify the volume backup {backup_id}")
        ).to_be_disabled()
        assert _unexpected(viewer_problems) == []
    finally:
        await stack.agent.stop()


@pytest.mark.timeout(120)
async def test_console_backup_targets_page_reads_servers_once_per_visit(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
) -> None:
    """Adding a target refreshes the list (``/backup-targets`` again) but not ``/servers``."""
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    # Signing in lands on the servers page, which polls /servers: leave it before counting
    # (CI once counted a poll of its that fired before the next page replaced it).
    await page.goto("about:blank")
    calls: list[str] = []

    def seen(call: Request) -> None:
        path = call.url.removeprefix(coordinator.url).split("?")[0]
        if path in ("/servers", "/backup-targets"):
            calls.append(f"{call.method} {path}")

    page.on("request", seen)
    await page.goto(f"{coordinator.url}/console/backup-targets")
    await expect(page.locator("#backup-targets")).to_contain_text("No backup targets yet")
    add = page.get_by_role("form", name="Add an S3-compatible target")
    await add.get_by_label("Name").fill("offsite")
    await add.get_by_label("Endpoint URL").fill("https://s3.example.com")
    await add.get_by_label("Bucket").fill("bucket")
    await add.get_by_label("Access key id").fill("AKIDEXAMPLE")
    await add.get_by_label("Secret access key").fill("not-a-real-secret")
    await add.get_by_role("button", name="Add target").click()
    await expect(add.locator(".form-status")).to_contain_text("Added offsite")
    await expect(page.locator("#backup-target-rows")).to_contain_text("offsite")
    assert calls.count("GET /backup-targets") == 2
    assert calls.count("GET /servers") == 1
    assert _unexpected(problems) == []
