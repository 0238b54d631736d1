"""``berth notify add|list|test|deliveries`` and ``berth work list|retry|cancel`` against a real
coordinator and a real loopback webhook receiver."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.harness import Coordinator, eventually, serving
from tests.integration.test_cli_workspace import Cli


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with serving(
        tmp_path / "coordinator",
        database_url,
        allow_private_webhook_targets=True,
        notification_max_attempts=1,
    ) as harness:
        yield harness


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    return Cli(coordinator, admin_token, tmp_path / "config")


async def test_notify_and_work_commands(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [503]
    received: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(request.headers.get("X-Berth-Signature", ""))
        return web.Response(status=answers[0])

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        monkeypatch.setenv("HOOK_SECRET", "cli-signing-secret-0123456789")
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/in"
        added = await cli.ok(
            "notify", "add", "ops", "--event", "deployment.failed", "--url", url,
            "--signing-secret-env", "HOOK_SECRET",
        )  # fmt: skip
        assert added.startswith("Subscribed ops (nsb_")
        [subscription] = (await cli.json("notify", "list"))["items"]
        assert subscription["signingSecret"] == "****"
        assert "ops" in await cli.ok("notify", "list")
        missing = await cli("notify", "add", "x", "--event", "deployment.failed", "--url", url,
                            "--signing-secret-env", "NOT_SET_ANYWHERE")  # fmt: skip
        assert missing.exit_code != 0
        assert "NOT_SET_ANYWHERE is not set" in missing.output

        queued = await cli.ok("notify", "test", subscription["id"])
        assert queued.startswith("Queued delivery ndl_")
        delivery_id = queued.split()[-1].rstrip(".")

        async def status_is(wanted: str, work_id: str) -> bool:
            shown = await cli.api(f"/operator-work/{work_id}")
            return bool(shown["item"]["status"] == wanted)

        await eventually(lambda: status_is("failed", delivery_id), what="the delivery to fail")
        log = await cli.json("notify", "deliveries", subscription["id"])
        assert [d["lastStatusCode"] for d in log["items"]] == [503]
        assert received[0].startswith("v1=")
        listed = await cli.ok("work", "list", "--kind", "system", "--status", "failed")
        assert delivery_id in listed

        answers[0] = 204
        retried = await cli.ok("work", "retry", delivery_id)
        assert retried.startswith("Retrying as ndl_")
        retry_id = retried.split()[-1].rstrip(".")
        await eventually(lambda: status_is("succeeded", retry_id), what="the retry to succeed")
        refused = await cli("work", "cancel", retry_id, "--reason", "too late")
        assert refused.exit_code != 0
        assert "cannot be canceled" in refused.output
    finally:
        await runner.cleanup()
