"""The console's last capability pages in a real headless Chromium against a real coordinator:
volume backups (with a real agent + Docker), DNS providers and wildcard certificates, the
default access domain policy. Each page shows the API's 4xx message. Screenshots go to
artifacts/console/<test>/."""

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.edge_proxy import free_port
from tests.harness import Coordinator, eventually
from tests.integration.backup_stacks import WRITER, _files, _leftovers, _sh, _volume, written_volume
from tests.integration.stacks import workload
from tests.integration.test_console_browser import _new_page, _sign_in
from tests.integration.test_console_pages import (
    _api,
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.support import mint_token

__all__ = ["chromium_browser"]

SECRET = base64.b64encode(b"a TSIG key nobody may read back").decode()


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
        _, original = await written_volume(stack, docker_client, volume_id)

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

        # The backup's own page: the checksum, sizes and latest restore the API stores.
        await page.get_by_role("link", name=f"Backup {backup_id}").click()
        shown = (await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"]
        assert len(shown["sha256"]) == 64, shown
        assert shown["archiveBytes"] > 0, shown
        await expect(page.locator("#backup-sha256")).to_have_text(shown["sha256"])
        await expect(page.locator("#backup-archive-size")).to_have_attribute(
            "data-bytes", str(shown["archiveBytes"])
        )
        await expect(page.locator("#backup-size")).to_have_attribute(
            "data-bytes", str(shown["sizeBytes"])
        )
        await expect(page.locator("#backup-status")).to_have_text("ready")
        await expect(page.locator("#restore-facts")).to_have_attribute("data-status", "ready")
        await expect(page.locator("#restore-target")).to_have_text(other_id)
        await page.screenshot(path=shots / "volume-backup.png", full_page=True)
        await page.goto(f"{coordinator.url}/console/volume-backups/vbk_missing")
        await expect(page.locator("main > [role=alert]")).to_be_visible()
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
        assert _leftovers(docker_client) == []


@pytest.fixture
async def dns01_coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator whose DNS-01 orders reach nothing: its CA's port refuses connections."""
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        # The DNS server below is on loopback: the operator allows private targets.
        allow_private_webhook_targets=True,
        dns01_acme_directory=f"http://127.0.0.1:{free_port()}/dir",
        dns01_check_interval_seconds=1,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.mark.timeout(180)
async def test_console_dns_providers_and_wildcard_certificates(
    dns01_coordinator: Coordinator,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    c = dns01_coordinator
    token = await c.bootstrap()
    shots = artifacts_dir(request.node.name)
    page, problems = await _signed_in(chromium_browser, c, token)
    await page.goto(f"{c.url}/console/certificates")

    # A provider: the TSIG secret typed like a password, cleared, and only ever shown masked.
    add = page.get_by_role("form", name="Add a DNS provider")
    await add.get_by_label("Name", exact=True).fill("ns1")
    await add.get_by_label("Server (host or host:port)").fill(f"127.0.0.1:{free_port()}")
    await add.get_by_label("Zone").fill("example.test")
    await add.get_by_label("TSIG key name").fill("berth")
    assert await add.get_by_label("TSIG secret (base64)").get_attribute("type") == "password"
    await add.get_by_label("TSIG secret (base64)").fill(SECRET)
    await add.get_by_role("button", name="Add provider").click()
    row = page.locator('#dns-provider-rows tr[data-provider="ns1"]')
    await expect(row.locator(".secret")).to_have_text("********")
    await expect(add.get_by_label("TSIG secret (base64)")).to_have_value("")
    assert SECRET not in await page.content()

    # A name outside the provider's zone: the API's 400 message shown in the form.
    wildcard = page.get_by_role("form", name="Request a wildcard certificate")
    await wildcard.get_by_label("Domain", exact=False).fill("apps.elsewhere.test")
    await wildcard.get_by_role("button", name="Request").click()
    await expect(wildcard.get_by_role("alert")).to_be_visible()

    # Requested inside the zone: the attempt fails (nothing answers) and says where and why.
    await wildcard.get_by_label("Domain", exact=False).fill("apps.example.test")
    await wildcard.get_by_role("button", name="Request").click()
    await expect(page.locator("h1")).to_contain_text("*.apps.example.test")
    failed = page.locator('#attempt-rows tr[data-status="failed"]')
    await expect(failed.first).to_contain_text("Failed while looking", timeout=60_000)
    await expect(failed.first).to_contain_text("dns_server_unreachable")
    await page.get_by_role("button", name="Retry").click()
    await expect(failed).to_have_count(2, timeout=60_000)
    await page.screenshot(path=shots / "wildcard.png", full_page=True)

    # The list shows the diagnosis too; the provider in use cannot be deleted (the 409 shown).
    await page.get_by_role("link", name="Certificates", exact=True).first.click()
    listed = page.locator('#wildcard-rows tr[data-wildcard="apps.example.test"]')
    await expect(listed.locator(".diagnosis")).to_contain_text("Failed while")
    await row.get_by_role("button", name="Delete DNS provider ns1").click()
    await expect(page.locator("#dns01-status").get_by_role("alert")).to_be_visible()
    await page.screenshot(path=shots / "certificates.png", full_page=True)
    await _fits_phone(page, shots / "phone-certificates.png")

    # The provider's own page: the API's fields (the secret masked) and the certificate using
    # it; its *Delete* shows the same refusal while the certificate exists.
    await row.get_by_role("link", name="ns1").click()
    await expect(page.locator("h1")).to_have_text("DNS provider ns1")
    [provider] = (await _api(c, token, "GET", "/dns-providers"))["items"]
    shown = await _api(c, token, "GET", f"/dns-providers/{provider['id']}")
    facts = page.locator("#dns-provider-facts")
    await expect(facts).to_contain_text(shown["serverAddress"])
    await expect(facts).to_contain_text(shown["zone"])
    await expect(facts.locator(".secret")).to_have_text("********")
    assert SECRET not in await page.content()
    await expect(
        page.locator('#dns-provider-wildcards tr[data-wildcard="apps.example.test"]')
    ).to_be_visible()
    await page.get_by_role("button", name="Delete DNS provider ns1").click()
    await expect(page.locator("#dns-provider-status").get_by_role("alert")).to_be_visible()
    await page.screenshot(path=shots / "dns-provider.png", full_page=True)
    await page.get_by_role("link", name="Certificates", exact=True).first.click()

    # Delete the certificate (after the confirmation), then the provider.
    await listed.get_by_role("link").click()
    await page.get_by_role("button", name="Delete").click()
    await expect(page.locator("#wildcards")).to_contain_text("No wildcard certificates yet.")
    await row.get_by_role("button", name="Delete DNS provider ns1").click()
    await expect(page.locator("#dns-providers")).to_contain_text("No DNS providers yet.")
    assert _unexpected(problems) == []

    # A token that may read certificates but not DNS providers: the page still draws, the 403
    # shows in the DNS-01 section.
    reader = await mint_token(
        c, token, ["certificates:read", "domain-bindings:read", "servers:read"], name="certs"
    )
    limited = await _new_page(chromium_browser, problems)
    await _sign_in(limited, c, reader["token"])
    await limited.goto(f"{c.url}/console/certificates")
    await expect(limited.locator("h1")).to_have_text("Certificates")
    await expect(limited.locator("#dns01-status").get_by_role("alert")).to_be_visible()
    assert _unexpected(problems) == []


@pytest.mark.timeout(120)
async def test_console_default_access_domain_policies(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    server = await coordinator.add_server(admin_token, "edge-1")
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/servers")
    await page.get_by_role("link", name="Default access domains").click()

    # The system policy: a base domain is required for generated names (the 400 shown).
    system = page.get_by_role("form", name="System policy")
    await expect(system.locator(".policy-current")).to_have_text("No system policy set.")
    await system.get_by_role("button", name="Save policy").click()
    await expect(system.get_by_role("alert")).to_contain_text("baseDomain")
    await system.get_by_label("Base domain", exact=True).fill("Apps.Example.TEST")
    await system.get_by_label("TLS mode").select_option("certificate")
    await system.get_by_role("button", name="Save policy").click()
    await expect(system.locator(".policy-current")).to_contain_text(
        "names under apps.example.test, TLS certificate"
    )
    shown = await _api(coordinator, admin_token, "GET", "/default-access-domain-policies/show")
    assert shown["policy"]["baseDomain"] == "apps.example.test"
    assert shown["policy"]["tlsMode"] == "certificate"

    # The server's own policy: generated names switched off there only.
    own = page.get_by_role("form", name="Policy of the server edge-1")
    await expect(own.locator(".policy-current")).to_contain_text("the system policy applies")
    await own.locator("select[name^=access-mode]").select_option("disabled")
    await own.get_by_role("button", name="Save policy").click()
    await expect(own.locator(".policy-current")).to_have_attribute("data-mode", "disabled")
    await page.screenshot(path=shots / "default-access.png", full_page=True)

    # From the server's page: only its policy, as set.
    await page.goto(f"{coordinator.url}/console/servers/{server['id']}")
    await page.get_by_role("link", name="Default access domain of this server").click()
    one = page.get_by_role("form", name="Policy of the server edge-1")
    await expect(one.locator(".policy-current")).to_contain_text("no generated names (disabled)")
    await expect(page.get_by_role("form", name="System policy")).to_have_count(0)
    await _fits_phone(page, shots / "phone-default-access.png")
    listed = await _api(coordinator, admin_token, "GET", "/default-access-domain-policies")
    assert {p["scope"]["kind"]: p["mode"] for p in listed["items"]} == {
        "system": "custom",
        "deployment-target": "disabled",
    }
    assert _unexpected(problems) == []
