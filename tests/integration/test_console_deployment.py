"""A deployment's own console page in a real headless Chromium against a real coordinator, agent,
Docker and the busybox test image: status, the timeline replayed from the events stream, the
build/deploy log as the API stores it, *Redeploy* and *Roll back* opening the new deployment's
page and following it live to `succeeded`; *Cancel* on a deployment held in a slow health check
ends it `canceled` and leaves no container; a missing deployment shows the API's 404.
Screenshots go to artifacts/console/<test>/."""

from pathlib import Path

import docker
import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import deployed_workload, workload
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_deployment_page_timeline_log_redeploy_and_rollback(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        first = stack.deployments[0]
        stored = await stack.call("GET", f"/deployments/{first}/logs")
        events = await stack.call("GET", f"/deployments/{first}/events")
        assert stored["logs"], stored
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)

        # From the resource's deployments to the deployment's own page.
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        await page.get_by_role("link", name=f"Deployment {first}").click()
        await expect(page).to_have_url(f"{coordinator.url}/console/deployments/{first}")
        await expect(page.locator("#deployment-current")).to_have_text("succeeded")
        # The whole timeline, replayed from the stream: one entry per stored event.
        timeline = page.locator("#timeline li")
        await expect(timeline).to_have_count(len(events["envelopes"]))
        await expect(page.locator('#timeline li[data-status="succeeded"]')).to_have_count(1)
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "succeeded"
        )
        # The log: the stored lines, in order.
        lines = page.locator("#deployment-logs li")
        await expect(lines).to_have_count(len(stored["logs"]))
        await expect(lines.first).to_contain_text(stored["logs"][0]["message"])
        await expect(lines.last).to_contain_text(stored["logs"][-1]["message"])
        # Finished and successful: nothing to cancel or retry.
        commands = page.get_by_role("group", name="Deployment commands")
        await expect(commands.get_by_role("button", name="Cancel")).to_have_count(0)
        await expect(commands.get_by_role("button", name="Retry")).to_have_count(0)
        await page.screenshot(path=shots / "deployment.png", full_page=True)

        # Redeploy: the new deployment's page opens and follows it live to its end.
        await commands.get_by_role("button", name="Redeploy").click()
        await expect(page).not_to_have_url(f"{coordinator.url}/console/deployments/{first}")
        second = page.url.rsplit("/", 1)[1]
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "succeeded", timeout=90_000
        )
        await expect(page.locator("#deployment-current")).to_have_text("succeeded")
        shown = await stack.call("GET", f"/deployments/{second}")
        assert shown["deployment"]["triggerKind"] == "redeploy", shown
        assert shown["deployment"]["resourceId"] == stack.resource_id
        await expect(page.locator("#deployment-logs li").first).to_be_visible()

        # Roll back to the first deployment, chosen in the list of earlier successful ones.
        commands = page.get_by_role("group", name="Deployment commands")
        await commands.get_by_label("Deployment to roll back to").select_option(first)
        await commands.get_by_role("button", name="Roll back").click()
        await expect(page).not_to_have_url(f"{coordinator.url}/console/deployments/{second}")
        third = page.url.rsplit("/", 1)[1]
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "succeeded", timeout=90_000
        )
        shown = await stack.call("GET", f"/deployments/{third}")
        assert shown["deployment"]["triggerKind"] == "rollback", shown
        assert shown["deployment"]["rollbackCandidateDeploymentId"] == first, shown
        await page.screenshot(path=shots / "rolled-back.png", full_page=True)
        await _fits_phone(page, shots / "phone-deployment.png")

        # A deployment that does not exist: the API's 404 in the page.
        await page.goto(f"{coordinator.url}/console/deployments/dep_missing")
        await expect(page.locator("main").get_by_role("alert")).to_contain_text("not found")
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_deployment_page_shows_a_failure_and_retries_it(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    # A container that exits at once and an HTTP check nothing can pass: the deployment fails in
    # its health phase every time. (Without an HTTP check the agent looks once whether the
    # candidate runs, and a container that exits at once could still be seen running.)
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sh -c 'exit 3'")
    try:
        await stack.configure(
            "health-policy",
            {
                "healthCheck": {
                    "enabled": True,
                    "type": "http",
                    "intervalSeconds": 1,
                    "timeoutSeconds": 1,
                    "retries": 2,
                    "http": {"path": "/"},
                }
            },
        )
        created = await stack.call(
            "POST",
            "/deployments",
            {
                "projectId": stack.project_id,
                "environmentId": stack.environment_id,
                "resourceId": stack.resource_id,
                "serverId": stack.server_id,
            },
        )
        failed = str(created["id"])
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/deployments/{failed}")
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "failed", timeout=90_000
        )
        await expect(page.locator("#deployment-current")).to_have_text("failed")
        shown = await stack.call("GET", f"/deployments/{failed}")
        assert shown["latestFailure"], shown
        await expect(page.locator("#deployment-failure")).to_contain_text(
            shown["latestFailure"]["message"]
        )
        await expect(page.locator("#deployment-logs li.log-stderr").first).to_be_visible()
        await page.screenshot(path=shots / "failed.png", full_page=True)

        # Retry: a new deployment of the same resource, whose page opens and follows it.
        commands = page.get_by_role("group", name="Deployment commands")
        await commands.get_by_role("button", name="Retry").click()
        await expect(page).not_to_have_url(f"{coordinator.url}/console/deployments/{failed}")
        retried = page.url.rsplit("/", 1)[1]
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "failed", timeout=90_000
        )
        shown = await stack.call("GET", f"/deployments/{retried}")
        assert shown["deployment"]["resourceId"] == stack.resource_id, shown
        assert shown["deployment"]["sourceDeploymentId"] == failed, shown
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_deployment_page_cancels_a_deployment_in_its_health_check(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    # Nothing listens on 8080: the health check keeps failing for minutes (60 tries, 2 s apart),
    # so the deployment stays running until it is canceled.
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.configure(
            "health-policy",
            {
                "healthCheck": {
                    "enabled": True,
                    "type": "http",
                    "intervalSeconds": 2,
                    "timeoutSeconds": 1,
                    "retries": 60,
                    "http": {"path": "/"},
                }
            },
        )
        created = await stack.call(
            "POST",
            "/deployments",
            {
                "projectId": stack.project_id,
                "environmentId": stack.environment_id,
                "resourceId": stack.resource_id,
                "serverId": stack.server_id,
            },
        )
        deployment_id = str(created["id"])
        label: dict[str, str | list[str] | bool] = {
            "label": f"berth.resource-id={stack.resource_id}"
        }

        async def started() -> bool:
            return bool(docker_client.containers.list(filters=label))

        await eventually(started, timeout=90, what="the candidate container to start")
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/deployments/{deployment_id}")
        await expect(page.locator("#deployment-current")).to_have_text("running")
        commands = page.get_by_role("group", name="Deployment commands")
        cancel = commands.get_by_role("button", name="Cancel")
        await page.screenshot(path=shots / "running.png", full_page=True)
        # The confirmation is accepted by the page's dialog handler.
        await cancel.click()
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "canceled", timeout=60_000
        )
        await expect(page.locator("#deployment-current")).to_have_text("canceled")
        await expect(cancel).to_have_count(0)
        shown = await stack.call("GET", f"/deployments/{deployment_id}")
        assert shown["deployment"]["status"] == "canceled", shown
        assert "cancel" not in shown["nextActions"], shown

        async def removed() -> bool:
            return not docker_client.containers.list(all=True, filters=label)

        await eventually(removed, timeout=30, what="the canceled candidate to be removed")
        await page.screenshot(path=shots / "canceled.png", full_page=True)
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
