"""The console's database backups in a real headless Chromium against a real coordinator and a
real agent running the local PostgreSQL image: back up now, verify, a restore refused without
the overwrite acknowledgement, restore, restore into another database, the backup policy.
Screenshots go to artifacts/console/<test>/."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.db_images import db_images
from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.stacks import Workload, remove_session_objects, workload
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]


async def _backup(stack: Workload, backup_id: str | None) -> dict[str, Any]:
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    backup: dict[str, Any] = shown["backup"]
    return backup


pytestmark = pytest.mark.docker
ROWS = 50  # the rows written below


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dependency_image_postgres=db_images("postgres")["postgres"],
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.mark.timeout(420)
async def test_console_backs_up_verifies_and_restores_a_database(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        main, clone = await asyncio.gather(
            bk.provision(stack, "Main DB"), bk.provision(stack, "Clone DB")
        )
        bk.psql(
            docker_client,
            main,
            "create table items (n int primary key);"
            "insert into items select g from generate_series(1, 50) g",
        )
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/environments/{stack.environment_id}/storage")
        section = page.locator("section", has=page.locator("#backups-title"))
        await section.get_by_label("Database to back up").select_option(label="Main DB")
        await expect(page.locator("#backups")).to_contain_text("No backups of this database yet.")

        # Back up now: the row follows the backup until it is ready, with its size.
        await section.get_by_role("button", name="Back up now").click()
        row = page.locator("#backup-rows tbody tr").first
        await expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
        await expect(row.locator(".backup-size")).not_to_have_text("\N{EN DASH}")

        # Verify: restored into a throwaway database and counted.
        await row.get_by_role("button", name="Verify the backup", exact=False).click()
        verified = row.locator(".backup-verification")
        await expect(verified).to_have_attribute("data-verification", "passed", timeout=120_000)
        await expect(verified).to_contain_text(f"{ROWS} row(s)")

        # Restore: refused without the acknowledgement (the API's message shown), then done.
        bk.psql(docker_client, main, "drop table items")
        restore = page.get_by_role("form", name="Restore a backup")
        await restore.get_by_role("button", name="Restore").click()
        await expect(restore.get_by_role("alert")).to_contain_text("acknowledgeDataOverwrite")
        await restore.get_by_label("Replace the target's tables", exact=False).check()
        await restore.get_by_role("button", name="Restore").click()
        restored = row.locator(".backup-restore")
        await expect(restored).to_have_attribute("data-restore", "ready", timeout=120_000)
        assert bk.psql(docker_client, main, "select count(*) from items") == str(ROWS)

        # Restore into another database: a clone (its outcome is the backup's newest attempt).
        backup_id = await row.get_attribute("data-backup")
        first = (await _backup(stack, backup_id))["latestRestoreAttempt"]["attemptId"]
        await restore.get_by_label("Into").select_option(label="Clone DB (another database)")
        await restore.get_by_label("Replace the target's tables", exact=False).check()
        await restore.get_by_role("button", name="Restore").click()

        async def cloned() -> bool:
            attempt = (await _backup(stack, backup_id))["latestRestoreAttempt"]
            assert attempt["status"] != "failed", attempt
            return bool(attempt["attemptId"] != first and attempt["status"] == "ready")

        await eventually(cloned, timeout=120, what="the backup restored into the clone")
        await expect(restored).to_have_attribute("data-restore", "ready")
        assert bk.psql(docker_client, clone, "select count(*) from items") == str(ROWS)

        # The backup policy.
        policy = page.get_by_role("form", name="Backup policy")
        await policy.get_by_label("Every (hours)").fill("12")
        await policy.get_by_label("Keep for (days)").fill("7")
        await policy.get_by_label("Keep at most (backups)").fill("3")
        await policy.get_by_role("button", name="Save policy").click()
        await expect(page.locator("#policy-summary")).to_contain_text(
            "every 12 h, kept 7 days, at most 3"
        )
        await page.screenshot(path=shots / "backups.png", full_page=True)
        await _fits_phone(page, shots / "phone-backups.png")

        # The database's own page: the API's facts (connection masked), the resource bound to
        # it, and its backup with the verification and the latest restore.
        await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/dependency-bindings",
            {"dependencyResourceId": main, "targetName": "DATABASE_URL"},
        )
        await page.reload()
        await (
            page.locator('#dependency-rows tr[data-dependency="Main DB"]')
            .get_by_role("link", name="Main DB")
            .click()
        )
        await expect(page.locator("h1")).to_have_text("Main DB")
        shown = (await stack.call("GET", f"/dependency-resources/{main}"))["dependencyResource"]
        await expect(page.locator("#database-connection")).to_have_text(
            shown["connection"]["maskedConnection"]
        )
        await expect(page.locator("#database-state")).to_have_text(shown["lifecycleStatus"])
        bound = page.locator(f'#database-binding-rows tr[data-resource="{stack.resource_id}"]')
        await expect(bound).to_contain_text("DATABASE_URL")
        backed = page.locator(f'#database-backup-rows tr[data-backup="{backup_id}"]')
        await expect(backed).to_have_attribute("data-status", "ready")
        await expect(backed.locator(".backup-verification")).to_have_attribute(
            "data-verification", "passed"
        )
        await expect(backed.locator(".backup-verification")).to_contain_text(f"{ROWS} row(s)")
        await expect(backed.locator("[data-restore]")).to_have_attribute("data-restore", "ready")
        await page.screenshot(path=shots / "database.png", full_page=True)
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)
