"""The console's capability pages in a real headless Chromium against a real coordinator (and a
real agent + Docker for task runs): rename/archive/clone, domains and certificate import,
storage volumes and databases, scheduled tasks; each page shows the API's 4xx message.
Screenshots go to artifacts/console/<test>/."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.async_api import Browser, Dialog, Page, expect

from coordinator.certificates.ingest import apply_report
from coordinator.domains.dns_check import Resolver
from shared.messages.certificates import CertificateFailure, CertificateReport
from tests.browser import artifacts_dir, chromium, require_console_parts
from tests.harness import Coordinator
from tests.integration.stacks import deployed_workload
from tests.integration.test_console_browser import (
    UI_TIMEOUT_MS,
    _new_page,
    _sign_in_with_password,
)
from tests.tls_material import issue_for
from tests.unit.coordinator.test_resources_api import create_resource, workspace

DOMAIN = "shop.example.test"
EXTERNAL = "postgres://shop:Very-Secret-pw@db.example.com:6543/shop"
# Chromium reports each refused call (the 4xx these tests provoke on purpose) on its console.
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture
async def chromium_browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; fails (never skips) without it under BERTH_REQUIRE_DOCKER=1."""
    require_console_parts()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with chromium() as launched:
        yield launched


async def _signed_in(
    browser: Browser, coordinator: Coordinator, token: str
) -> tuple[Page, list[str]]:
    problems: list[str] = []
    page = await _new_page(browser, problems)
    await _sign_in_with_password(page, coordinator, token)
    # Destructive actions ask first: accept every confirm() dialog.
    page.on("dialog", lambda dialog: _accept(dialog))
    return page, problems


def _accept(dialog: Dialog) -> Any:
    return dialog.accept()


def _unexpected(problems: list[str]) -> list[str]:
    return [p for p in problems if not REFUSED.search(p)]


async def _fits_phone(page: Page, shot: Path) -> None:
    """At phone width the page has no sideways scroll (wide tables scroll in their own box)."""
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("main h1")).to_be_visible()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, (page.url, overflow)
    await page.screenshot(path=shot, full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 720})


async def _api(coordinator: Coordinator, token: str, method: str, path: str) -> Any:
    status, body, _ = await coordinator.call(method, path, token=token)
    assert status == 200, body
    return body


@pytest.mark.timeout(180)
async def test_console_renames_archives_and_clones(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)

    # Project: rename, archive, restore.
    await page.goto(f"{coordinator.url}/console/projects/{project_id}")
    await page.get_by_role("link", name="Settings: rename, archive").click()
    rename = page.get_by_role("form", name="Rename project")
    await rename.get_by_label("New name").fill("Storefront")
    await rename.get_by_role("button", name="Rename").click()
    await expect(page.get_by_role("heading", name="Storefront", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Archive project").click()
    await expect(page.locator("#lifecycle-status")).to_have_text("archived")
    await page.screenshot(path=shots / "project-archived.png", full_page=True)
    await page.get_by_role("button", name="Restore project").click()
    await expect(page.locator("#lifecycle-status")).to_have_text("active")
    shown = await _api(coordinator, admin_token, "GET", f"/projects/{project_id}")
    assert (shown.get("project") or shown)["name"] == "Storefront"

    # Environment: a name the API refuses shows its message; then clone, rename, archive.
    await page.goto(f"{coordinator.url}/console/environments/{environment_id}")
    await page.get_by_role("link", name="Settings: rename, clone, archive").click()
    clone = page.get_by_role("form", name="Clone environment")
    await clone.get_by_label("New environment name").fill("no spaces allowed")
    await clone.get_by_role("button", name="Clone").click()
    await expect(clone.get_by_role("alert")).to_contain_text("targetName")
    await clone.get_by_label("New environment name").fill("staging")
    await clone.get_by_role("button", name="Clone").click()
    await expect(page.get_by_role("heading", name="staging", exact=True)).to_be_visible()
    clone_id = page.url.rsplit("/", 2)[1]
    assert clone_id != environment_id
    rename = page.get_by_role("form", name="Rename environment")
    await rename.get_by_label("New name").fill("staging-2")
    await rename.get_by_role("button", name="Rename").click()
    await expect(page.get_by_role("heading", name="staging-2", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Archive environment").click()
    await expect(page.locator("#lifecycle-status")).to_have_text("archived")
    shown = await _api(coordinator, admin_token, "GET", f"/environments/{clone_id}")
    assert (shown.get("environment") or shown)["lifecycleStatus"] == "archived"
    await page.screenshot(path=shots / "environment-archived.png", full_page=True)
    await _fits_phone(page, shots / "phone-environment-settings.png")

    # Resource: archive.
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}")
    await page.get_by_role("button", name="Archive resource").click()
    await expect(page.locator("#lifecycle-status")).to_have_text("archived")
    shown = await _api(coordinator, admin_token, "GET", f"/resources/{resource_id}")
    assert shown["resource"]["lifecycleStatus"] == "archived"

    # An address whose object does not exist: each new page shows the API's 404 message.
    for address in (
        "/projects/prj_doesnotexist/settings",
        "/environments/env_doesnotexist/settings",
        "/resources/res_doesnotexist/domains",
        "/resources/res_doesnotexist/storage",
        "/environments/env_doesnotexist/storage",
        "/resources/res_doesnotexist/tasks",
        "/certificates/crt_doesnotexist",
    ):
        await page.goto(f"{coordinator.url}/console{address}")
        await expect(page.locator("main > [role=alert]")).to_contain_text(
            re.compile("not found", re.IGNORECASE)
        )
    assert _unexpected(problems) == []


@pytest.mark.timeout(180)
async def test_console_domains_and_certificate_import(
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

    await page.goto(f"{coordinator.url}/console/resources/{resource_id}")
    await page.get_by_role("link", name="Domains").click()
    await expect(page.locator("#domains")).to_contain_text("No domains bound yet.")
    add = page.get_by_role("form", name="Add a domain")
    await add.get_by_label("Domain name").fill(DOMAIN)
    await add.get_by_label("Server").select_option(server["id"])
    await add.get_by_role("button", name="Add domain").click()
    row = page.locator(f'#domain-rows tr[data-domain="{DOMAIN}"]')
    await expect(row.locator(".binding-status")).to_contain_text("pending_verification")
    await expect(row.locator(".dns-observation")).to_have_attribute(
        "data-dns-status", re.compile(".+")
    )
    await expect(row.locator(".route-readiness")).to_have_attribute(
        "data-readiness", re.compile("^(ready|not-ready)$")
    )
    await expect(row).to_contain_text(" TXT ")
    # The same domain again: the API's 409 message, shown in the form.
    await add.get_by_label("Domain name").fill(DOMAIN)
    await add.get_by_role("button", name="Add domain").click()
    await expect(add.get_by_role("alert")).to_contain_text("already bound")
    await row.get_by_role("button", name=f"Verify {DOMAIN}").click()
    await expect(row.locator(".binding-status")).to_contain_text("1 check(s)")
    # Ownership by DNS TXT: the record is not published, so the coordinator refuses and says so.
    await row.get_by_role("button", name=f"Confirm ownership of {DOMAIN}").click()
    await expect(page.locator("#domain-status").get_by_role("alert")).to_contain_text("TXT")
    await page.screenshot(path=shots / "domains.png", full_page=True)
    await _fits_phone(page, shots / "phone-domains.png")

    # Certificates of this binding: import refused with a key that does not match, then accepted.
    await row.get_by_role("link", name="Certificates").click()
    await expect(page.get_by_role("heading", name="Certificates", exact=True)).to_be_visible()
    issued = issue_for([DOMAIN])
    form = page.get_by_role("form", name="Import a certificate")
    await form.get_by_label("Certificate chain (PEM)").fill(issued.chain())
    await form.get_by_label("Private key (PEM)").fill(
        issued.key_pem(ec.generate_private_key(ec.SECP256R1()))
    )
    await form.get_by_role("button", name="Import").click()
    await expect(form.get_by_role("alert")).to_be_visible()
    assert await _count_certificates(coordinator, admin_token) == 0
    await form.get_by_label("Private key (PEM)").fill(issued.key_pem())
    await form.get_by_role("button", name="Import").click()
    await expect(page.get_by_role("heading", name=f"Certificate for {DOMAIN}")).to_be_visible()
    await expect(page.locator("#certificate-facts")).to_contain_text("imported")
    await expect(page.locator('#attempt-rows tr[data-status="imported"]')).to_have_count(1)
    assert "PRIVATE KEY" not in await page.content()
    await page.screenshot(path=shots / "certificate.png", full_page=True)
    # An imported certificate is not renewed by the edge; it can be revoked (unloaded).
    actions = page.locator(".actions")
    await expect(actions.get_by_role("button", name="Renew now")).to_have_count(0)
    await actions.get_by_role("button", name="Revoke").click()
    await expect(page.locator("#certificate-facts")).to_contain_text("revoked")
    await expect(actions.get_by_role("button", name="Revoke")).to_have_count(0)
    [revoked] = (await _api(coordinator, admin_token, "GET", "/certificates"))["items"]
    assert revoked["status"] == "revoked"
    await page.get_by_role("link", name="Certificates").first.click()
    await expect(page.locator("#certificate-rows")).to_contain_text(DOMAIN)
    await page.screenshot(path=shots / "certificates.png", full_page=True)
    await _fits_phone(page, shots / "phone-certificates.png")

    # Delete the binding (after its safety check and the confirmation).
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}/domains")
    await page.get_by_role("button", name=f"Delete {DOMAIN}").click()
    await expect(page.locator("#domains")).to_contain_text("No domains bound yet.")
    listed = await _api(
        coordinator, admin_token, "GET", f"/domain-bindings?resourceId={resource_id}"
    )
    assert listed["items"] == []
    assert _unexpected(problems) == []


@pytest.mark.timeout(180)
async def test_console_explains_a_failed_certificate_attempt(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    """An edge's failure report (the agent side reads it from Caddy, tested against Pebble in
    test_certificates_e2e) becomes an attempt the certificate page explains in words."""
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    server = await coordinator.add_server(admin_token, "edge-1", host="203.0.113.10")
    status, created, _ = await coordinator.call(
        "POST",
        "/domain-bindings",
        token=admin_token,
        json={
            "projectId": project_id,
            "environmentId": environment_id,
            "resourceId": resource_id,
            "serverId": server["id"],
            "domainName": DOMAIN,
        },
    )
    assert status == 201, created
    status, body, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{created['id']}/ownership-confirmations",
        token=admin_token,
        json={"method": "manual", "reason": "test"},
    )
    assert status == 200, body
    retry = datetime.now(UTC) + timedelta(hours=1)
    failure = CertificateFailure(
        domain_name=DOMAIN,
        occurred_at=datetime.now(UTC),
        failure_phase="challenge",
        error_code="acme_challenge_unreachable",
        failure_message="the CA could not reach this server on port 80",
        retriable=True,
        retry_after=retry,
    )
    report = CertificateReport(id=1, certificates=[], failures=[failure])
    await apply_report(server["id"], report, Resolver("127.0.0.1:9"))
    [certificate] = (await _api(coordinator, admin_token, "GET", "/certificates"))["items"]

    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/certificates")
    # The phase in words, the coordinator's refined message, and when it is tried again.
    rows = page.locator("#certificate-rows")
    await expect(rows).to_contain_text(
        "Failed while proving control of the domain (the ACME challenge):"
    )
    await expect(rows).to_contain_text("the CA could not reach this server on port 80.")
    await expect(rows).to_contain_text("It is retried after")
    await page.get_by_role("link", name=DOMAIN).click()
    failed = page.locator('#attempt-rows tr[data-status="failed"]')
    await expect(failed).to_contain_text("the CA could not reach this server on port 80")
    await expect(failed).to_contain_text("acme_challenge_unreachable")
    assert certificate["status"] in await page.locator("#certificate-facts").inner_text()
    await page.screenshot(path=shots / "certificate-failed.png", full_page=True)
    assert _unexpected(problems) == []


async def _count_certificates(coordinator: Coordinator, token: str) -> int:
    listed = await _api(coordinator, token, "GET", "/certificates")
    return len(listed["items"])


@pytest.mark.timeout(180)
async def test_console_storage_volumes_and_databases(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    server = await coordinator.add_server(admin_token, "db-1")
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/resources/{resource_id}")
    await page.get_by_role("link", name="Storage and databases").click()

    # A volume: create, attach, refused delete while attached, rename, detach, delete.
    create = page.get_by_role("form", name="New storage volume")
    await create.get_by_label("Name", exact=True).fill("uploads")
    await create.get_by_role("button", name="Create volume").click()
    await expect(page.locator('#volume-rows tr[data-volume="uploads"]')).to_be_visible()
    attach = page.get_by_role("form", name="Attach a volume")
    await attach.get_by_label("Path in the container").fill("/data")
    await attach.get_by_role("button", name="Attach").click()
    await expect(page.locator("#attachment-rows")).to_contain_text("/data")
    await page.get_by_role("button", name="Delete volume uploads").click()
    await expect(page.locator("#storage-status")).to_contain_text("cannot be deleted")
    rename = page.get_by_role("form", name="Rename a storage volume")
    await rename.get_by_label("New name").fill("media")
    await rename.get_by_role("button", name="Rename volume").click()
    await expect(page.locator('#volume-rows tr[data-volume="media"]')).to_contain_text("/data")
    await page.screenshot(path=shots / "volumes.png", full_page=True)
    await page.get_by_role("button", name="Detach media").click()
    await expect(page.locator("#attachments")).to_contain_text("Nothing attached.")
    await page.get_by_role("button", name="Delete volume media").click()
    await expect(page.locator("#volumes")).to_contain_text("No storage volumes yet.")

    # A database through a plan that is accepted (it waits for the server's agent).
    plan = page.get_by_role("form", name="Plan a new database")
    await plan.get_by_label("Kind").select_option("redis")
    await plan.get_by_label("Name", exact=True).fill("cache")
    await plan.get_by_label("Server").select_option(server["id"])
    await plan.get_by_role("button", name="Plan").click()
    summary = page.locator("#plan-summary")
    await expect(summary).to_have_attribute("data-plan-status", "planned")
    assert (await _api(coordinator, admin_token, "GET", "/dependency-resources/count"))[
        "count"
    ] == 0
    await summary.get_by_role("button", name="Accept plan and provision").click()
    await expect(summary).not_to_have_attribute("data-plan-status", "planned")
    await expect(
        page.locator('#dependency-rows tr[data-dependency="cache"] .lifecycle')
    ).to_contain_text("provisioning")

    # An external database: imported, bound, its URL only ever masked; rotation is refused
    # (Berth does not manage its password) and says why.
    imported = page.get_by_role("form", name="Import an external database")
    await imported.get_by_label("Name", exact=True).fill("shop-db")
    await imported.get_by_label("Connection URL").fill(EXTERNAL)
    await imported.get_by_role("button", name="Import").click()
    await expect(page.locator('#dependency-rows tr[data-dependency="shop-db"]')).to_be_visible()
    bind = page.get_by_role("form", name="Bind a database")
    await bind.get_by_label("Database").select_option(label="shop-db")
    await bind.get_by_role("button", name="Bind").click()
    binding = page.locator('#binding-rows tr[data-binding="DATABASE_URL"]')
    await expect(binding).to_contain_text("shop-db")
    assert "Very-Secret-pw" not in await page.content()
    await binding.get_by_role("button", name="Rotate the password of DATABASE_URL").click()
    await expect(page.locator("#storage-status").get_by_role("alert")).to_be_visible()
    await page.screenshot(path=shots / "databases.png", full_page=True)
    await _fits_phone(page, shots / "phone-storage.png")
    rename_db = page.get_by_role("form", name="Rename a database")
    await rename_db.get_by_label("Database").select_option(label="shop-db")
    await rename_db.get_by_label("New name").fill("orders-db")
    await rename_db.get_by_role("button", name="Rename database").click()
    await expect(binding).to_contain_text("orders-db")
    await binding.get_by_role("button", name="Unbind DATABASE_URL").click()
    await expect(page.locator("#bindings")).to_contain_text("No databases bound.")
    assert _unexpected(problems) == []


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_scheduled_tasks_run_now_and_logs(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    docker_client: Any,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        await page.get_by_role("link", name="Scheduled tasks").click()
        await expect(page.locator("#tasks")).to_contain_text("No scheduled tasks yet.")
        form = page.get_by_role("form", name="Scheduled task")
        # A schedule the API refuses: its message is shown, nothing is stored.
        await form.get_by_label("Schedule").fill("every now and then")
        await form.get_by_label("Command").fill("echo task-$((6*7))")
        await form.get_by_role("button", name="Save task").click()
        await expect(form.get_by_role("alert")).to_be_visible()
        await form.get_by_label("Schedule").fill("@hourly")
        await form.get_by_role("button", name="Save task").click()
        task = page.locator("#task-rows tbody tr").first
        await expect(task.locator(".task-state")).to_have_text("enabled")

        # Run now: the run shows up, ends succeeded, and its output is readable.
        await task.get_by_role("button", name=re.compile("^Run .* now$")).click()
        run = page.locator("#run-rows tbody tr").first
        await expect(run).to_have_attribute("data-status", "succeeded", timeout=90_000)
        await run.get_by_role("button", name=re.compile("^Logs of run")).click()
        await expect(page.locator("#run-logs")).to_contain_text("task-42")
        await page.screenshot(path=shots / "tasks.png", full_page=True)

        # Pause, edit, delete.
        await task.get_by_role("button", name="Pause").click()
        await expect(task.locator(".task-state")).to_have_text("disabled")
        await task.get_by_role("button", name="Edit").click()
        await form.get_by_label("Schedule").fill("*/30 * * * *")
        await form.get_by_role("button", name="Save task").click()
        await expect(task).to_contain_text("*/30 * * * *")
        await _fits_phone(page, shots / "phone-tasks.png")
        await task.get_by_role("button", name="Delete").click()
        await expect(page.locator("#tasks")).to_contain_text("No scheduled tasks yet.")
        listed = await _api(
            coordinator, admin_token, "GET", f"/scheduled-tasks?resourceId={stack.resource_id}"
        )
        assert listed["items"] == []
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
