"""Memory and disk thresholds beside the CPU one on the console's server page, in a real headless
Chromium against a real coordinator: rules in the wrong order show the API's refusal and change
nothing; CPU, memory and disk rules are saved and shown; a rule on another metric set through
the API survives the page's saves (the API replaces the whole policy); a rule switched off is
removed. Screenshots go to artifacts/console/<test>/."""

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.test_console_pages import (
    _api,
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]


def _rules(policy: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {
        f"{r['signal']}.{r['metric']}": (r["warning"], r["critical"])
        for r in policy["policy"]["rules"]
    }


@pytest.mark.timeout(180)
async def test_console_sets_cpu_memory_and_disk_thresholds(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    server = await coordinator.add_server(admin_token, "edge-1")
    server_id = server["id"]
    # A rule the page does not edit, set through the API first.
    status, body, _ = await coordinator.call(
        "POST",
        "/runtime-monitoring/thresholds",
        token=admin_token,
        json={
            "scope": {"kind": "server", "serverId": server_id},
            "rules": [{"signal": "inode", "metric": "usedPercent", "warning": 60, "critical": 70}],
        },
    )
    assert status in (200, 201), body
    policy_path = f"/runtime-monitoring/thresholds?scope.kind=server&scope.serverId={server_id}"
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    await page.goto(f"{coordinator.url}/console/servers/{server_id}")
    rules = page.locator("#threshold-rules li")
    await expect(rules).to_have_count(1)
    form = page.get_by_role("form", name="Threshold rules")
    # The policy has no CPU rule: its box is unticked, like memory and disk.
    await expect(form.get_by_label("CPU busy % rule")).not_to_be_checked()

    # Memory's warning above its critical: the API's refusal is shown, nothing changes.
    await form.get_by_label("Memory used % rule").check()
    await form.get_by_label("Memory used % warning").fill("95")
    await form.get_by_label("Memory used % critical").fill("80")
    await form.get_by_role("button", name="Save thresholds").click()
    await expect(form.get_by_role("alert")).to_be_visible()
    before = await _api(coordinator, admin_token, "GET", policy_path)
    assert _rules(before) == {"inode.usedPercent": (60, 70)}

    # CPU, memory and disk saved; the inode rule is kept.
    await form.get_by_label("CPU busy % rule").check()
    await form.get_by_label("CPU busy % warning").fill("70")
    await form.get_by_label("CPU busy % critical").fill("90")
    await form.get_by_label("Memory used % warning").fill("75")
    await form.get_by_label("Memory used % critical").fill("92.5")
    await form.get_by_label("Disk used % rule").check()
    await form.get_by_label("Disk used % warning").fill("65")
    await form.get_by_label("Disk used % critical").fill("85")
    await form.get_by_role("button", name="Save thresholds").click()
    await expect(rules).to_have_count(4)
    await expect(
        page.locator('#threshold-rules li[data-rule="memory.usedPercent"]')
    ).to_contain_text("warning 75, critical 92.5")
    await expect(page.locator('#threshold-rules li[data-rule="disk.usedPercent"]')).to_contain_text(
        "warning 65, critical 85"
    )
    saved = await _api(coordinator, admin_token, "GET", policy_path)
    assert _rules(saved) == {
        "inode.usedPercent": (60, 70),
        "cpu.busyPercent": (70, 90),
        "memory.usedPercent": (75, 92.5),
        "disk.usedPercent": (65, 85),
    }
    await page.screenshot(path=shots / "thresholds.png", full_page=True)

    # After a reload the form shows what is stored; disk switched off is removed.
    await page.reload()
    form = page.get_by_role("form", name="Threshold rules")
    await expect(form.get_by_label("Disk used % rule")).to_be_checked()
    await expect(form.get_by_label("Memory used % critical")).to_have_value("92.5")
    await form.get_by_label("Disk used % rule").uncheck()
    await form.get_by_role("button", name="Save thresholds").click()
    await expect(rules).to_have_count(3)
    saved = await _api(coordinator, admin_token, "GET", policy_path)
    assert set(_rules(saved)) == {"inode.usedPercent", "cpu.busyPercent", "memory.usedPercent"}
    await _fits_phone(page, shots / "phone-thresholds.png")
    assert _unexpected(problems) == []
