"""The console's backup targets in a real headless Chromium against a real coordinator, a real
agent running the local PostgreSQL image and moto's S3 server on loopback: a target added from
the page (its secret masked), a database backed up into the bucket from the storage page's
picker, a policy naming the target, and the API's refusals shown (409 while the policy uses it,
404 for a target gone meanwhile, 403 for a token that may only read). Screenshots go to
artifacts/console/<test>/."""

from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.db_images import db_images
from tests.harness import Coordinator
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import WRITER, _leftovers
from tests.integration.stacks import remove_session_objects, workload
from tests.integration.test_console_browser import _new_page, _sign_in
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from tests.unit.coordinator.support import mint_token

__all__ = ["chromium_browser"]

pytestmark = pytest.mark.docker

BUCKET = "console-backups"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dependency_image_postgres=db_images("postgres")["postgres"],
        # The S3 server listens on loopback: the operator allows private targets.
        allow_private_webhook_targets=True,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def s3(tmp_path: Path) -> AsyncIterator[S3Server]:
    async with s3_server(tmp_path / "s3") as server:
        await server.create_bucket(BUCKET)
        yield server


@pytest.mark.timeout(420)
async def test_console_adds_a_target_backs_up_into_it_and_shows_refusals(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    s3: S3Server,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        db = await bk.provision(stack, "Main DB")
        bk.psql(
            docker_client,
            db,
            "create table items (n int primary key);"
            "insert into items select generate_series(1, 20)",
        )
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)

        # Add a target from the page: listed with the secret masked, the secret nowhere.
        await page.goto(f"{coordinator.url}/console/backup-targets")
        await page.get_by_role("link", name="Backup targets").click()
        await expect(page.locator("#backup-targets")).to_contain_text("No backup targets yet")
        add = page.get_by_role("form", name="Add an S3-compatible target")
        await add.get_by_label("Name").fill("offsite")
        await add.get_by_label("Endpoint URL").fill(s3.endpoint_url)
        await add.get_by_label("Region").fill(REGION)
        await add.get_by_label("Bucket").fill(BUCKET)
        await add.get_by_label("Prefix").fill("console/db")
        await add.get_by_label("Access key id").fill(ACCESS_KEY)
        await add.get_by_label("Secret access key").fill(SECRET_KEY)
        await add.get_by_role("button", name="Add target").click()
        await expect(add.locator(".form-status")).to_contain_text("Added offsite")
        row = page.locator("#backup-target-rows tbody tr", has_text="offsite")
        await expect(row.locator(".target-secret")).to_have_text("********")
        await expect(row).to_contain_text(f"s3://{BUCKET}/console/db")
        assert SECRET_KEY not in await page.content()
        target = await row.get_attribute("data-target")
        listed = (await stack.call("GET", "/backup-targets"))["items"]
        assert [t["id"] for t in listed] == [target]
        await page.screenshot(path=shots / "targets.png", full_page=True)
        await _fits_phone(page, shots / "phone-targets.png")

        # Back up the database into it from the storage page's picker: the object is in the bucket.
        await page.goto(f"{coordinator.url}/console/environments/{stack.environment_id}/storage")
        section = page.locator("section", has=page.locator("#backups-title"))
        await section.get_by_label("Database to back up").select_option(label="Main DB")
        await section.get_by_label("Keep the backup in").select_option(value=target)
        await section.get_by_role("button", name="Back up now").click()
        backup_row = page.locator("#backup-rows tbody tr").first
        await expect(backup_row).to_have_attribute("data-status", "ready", timeout=120_000)
        backup_id = await backup_row.get_attribute("data-backup")
        key = f"console/db/{backup_id}.berthbk"
        await expect(backup_row.locator(".backup-where")).to_have_text(f"in s3://{BUCKET}/{key}")
        shown = (await stack.call("GET", f"/dependency-resources/backups/{backup_id}"))["backup"]
        assert shown["backupTargetId"] == target
        assert shown["target"] == "s3"
        assert await s3.keys(BUCKET) == {key: shown["sizeBytes"]}
        assert (await s3.read(BUCKET, key)).startswith(b"BERTHBK1")

        # A policy naming the target: saved with it, shown with it.
        policy = page.get_by_role("form", name="Backup policy")
        await policy.get_by_label("Keep the policy's backups in").select_option(value=target)
        await policy.get_by_label("Verify each scheduled backup once ready").check()
        await policy.get_by_role("button", name="Save policy").click()
        await expect(page.locator("#policy-summary")).to_contain_text("kept in offsite")
        await expect(page.locator("#policy-summary")).to_contain_text("verified once ready")
        policies = (
            await stack.call(
                "GET", f"/dependency-resources/backup-policies?dependencyResourceId={db}"
            )
        )["items"]
        assert [p["backupTargetId"] for p in policies] == [target]
        assert [p["verifyAfterBackup"] for p in policies] == [True]

        # Remove while the policy writes to it: the API's 409 is shown, the target stays.
        await page.goto(f"{coordinator.url}/console/backup-targets")
        await row.get_by_role("button", name="Remove the target offsite").click()
        alert = page.locator("#backup-target-status").get_by_role("alert")
        await expect(alert).to_contain_text("backup policy(ies) write to this target")
        await expect(row).to_be_visible()

        # A target removed meanwhile (here through the API): the page shows the API's 404.
        spare = await stack.call(
            "POST",
            "/backup-targets",
            {
                "name": "spare",
                "endpointUrl": s3.endpoint_url,
                "bucket": BUCKET,
                "accessKeyId": ACCESS_KEY,
                "secretAccessKey": SECRET_KEY,
            },
        )
        await page.reload()
        remove_spare = page.get_by_role("button", name="Remove the target spare")
        await expect(remove_spare).to_be_visible()
        await stack.call("DELETE", f"/backup-targets/{spare['id']}")
        await remove_spare.click()
        await expect(alert).to_contain_text("not found")
        assert _unexpected(problems) == []

        # A token that may only read targets: listed, but adding is refused with the API's 403.
        reader = await mint_token(
            coordinator, admin_token, ["backup-targets:read", "servers:read"], name="reader"
        )
        limited = await _new_page(chromium_browser, problems)
        await _sign_in(limited, coordinator, reader["token"])
        await limited.goto(f"{coordinator.url}/console/backup-targets")
        await expect(limited.locator("#backup-target-rows")).to_contain_text("offsite")
        form = limited.get_by_role("form", name="Add an S3-compatible target")
        await form.get_by_label("Name").fill("mine")
        await form.get_by_label("Endpoint URL").fill(s3.endpoint_url)
        await form.get_by_label("Bucket").fill(BUCKET)
        await form.get_by_label("Access key id").fill(ACCESS_KEY)
        await form.get_by_label("Secret access key").fill(SECRET_KEY)
        await form.get_by_role("button", name="Add target").click()
        await expect(form.get_by_role("alert")).to_contain_text("backup-targets:write")
        assert len((await stack.call("GET", "/backup-targets"))["items"]) == 1
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        remove_session_objects(docker_client)


@pytest.mark.timeout(300)
async def test_console_backs_a_volume_up_into_a_target(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    s3: S3Server,
) -> None:
    """The volume backup form's picker sends the target: the archive lands in the bucket."""
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        await bk.written_volume(stack, docker_client)
        target = await stack.call(
            "POST",
            "/backup-targets",
            {
                "name": "volumes",
                "endpointUrl": s3.endpoint_url,
                "region": REGION,
                "bucket": BUCKET,
                "prefix": "vol",
                "accessKeyId": ACCESS_KEY,
                "secretAccessKey": SECRET_KEY,
            },
        )
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}/storage")
        section = page.locator("section", has=page.locator("#volume-backups-title"))
        await section.get_by_label("Volume to back up").select_option(label="data")
        await section.get_by_label("Keep the volume backup in").select_option(
            label=f"volumes (s3://{BUCKET}/vol/)"
        )
        await section.get_by_role("button", name="Back up volume now").click()
        row = page.locator("#volume-backup-rows tbody tr").first
        await expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
        backup_id = await row.get_attribute("data-backup")
        key = f"vol/{backup_id}.berthbk"
        await expect(row.locator(".backup-where")).to_have_text(f"in s3://{BUCKET}/{key}")
        shown = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
        assert shown["backupTargetId"] == target["id"]
        assert await s3.keys(BUCKET) == {key: shown["sizeBytes"]}
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        assert _leftovers(docker_client) == []


@pytest.mark.timeout(300)
async def test_console_adds_a_server_directory_and_shows_where_it_keeps_backups(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
) -> None:
    """The directory form lists the servers by name; a directory the agent allows is added and
    shown as server:path (no bucket, no keys); one outside its roots shows the API's 403."""
    allowed = tmp_path / "backups"
    allowed.mkdir()
    stack = await workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        "sleep 3600",
        agent_env={"BERTH_AGENT_BACKUP_DIRS": str(allowed)},
    )
    try:
        server = (await stack.call("GET", f"/servers/{stack.server_id}"))["server"]
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/backup-targets")
        add = page.get_by_role("form", name="Add a directory on a server")
        await expect(add.get_by_label("Server")).to_have_value(stack.server_id)

        await add.get_by_label("Name").fill("outside")
        await add.get_by_label("Directory").fill("/etc/berth-outside")
        await add.get_by_role("button", name="Add directory").click()
        await expect(add.get_by_role("alert")).to_contain_text(str(allowed))
        assert (await stack.call("GET", "/backup-targets"))["items"] == []

        await add.get_by_label("Name").fill("local-disk")
        await add.get_by_label("Directory").fill(f"{allowed}/prod")
        await add.get_by_role("button", name="Add directory").click()
        await expect(add.locator(".form-status")).to_contain_text("Added local-disk")
        row = page.locator("#backup-target-rows tbody tr", has_text="local-disk")
        await expect(row.locator(".target-where")).to_have_text(f"{server['name']}:{allowed}/prod")
        await expect(row).not_to_contain_text("s3://")
        [listed] = (await stack.call("GET", "/backup-targets"))["items"]
        assert (listed["kind"], listed["serverId"]) == ("server-directory", stack.server_id)
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
