"""The report's reproduction end to end, with a real agent and a real host shell: a ticket issued
before its token was revoked must not attach, and the shell the token had open must end."""

import asyncio
import os
from pathlib import Path

import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import start_agent
from tests.integration.test_terminals import HOST_SHELL, Term, attach, opened
from tests.unit.coordinator.support import mint_token

pytestmark = pytest.mark.docker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_revoked_token_loses_its_host_shell_and_its_unused_tickets(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    agent, server_id = await start_agent(
        coordinator, admin_token, tmp_path / "agent", name="host", env=HOST_SHELL
    )
    try:
        opener = await mint_token(
            coordinator, admin_token, ["terminal-sessions:open", "servers:read"], name="ops"
        )
        scope = {"kind": "server", "serverId": server_id}
        live = await opened(coordinator, opener["token"], scope)
        term = await attach(coordinator, live)
        # The echo of the typed line shows "$((1+1))", the shell's answer shows "2".
        await term.run("echo pid-$((1+1))-$$-end")
        await term.expect(b"pid-2-")
        async with asyncio.timeout(scaled(15)):
            while b"-end" not in term.output:
                assert await term._next()
        shell_pid = int(bytes(term.output).split(b"-end")[0])
        assert _alive(shell_pid)
        # A second session whose ticket is kept for later, as in the report.
        kept = await opened(coordinator, opener["token"], scope)

        token_id = opener["tokenId"]
        status, body, _ = await coordinator.call(
            "POST",
            f"/deploy-tokens/{token_id}/revoke",
            token=admin_token,
            json={"confirmation": {"tokenId": token_id}},
        )
        assert status == 200, body

        end = await term.end()
        assert end["type"] == "error", end
        assert end["error"]["code"] == "unauthorized"
        assert term.close_code == 4401
        late = await Term.attach(
            coordinator, kept["transport"]["path"], kept["transport"]["ticket"]
        )
        assert late.controls, "no answer to the late ticket"
        assert late.controls[-1]["type"] == "error", late.controls
        await late.end()
        assert late.close_code in (4401, 4409)

        async def shell_gone() -> bool:
            return not _alive(shell_pid)

        await eventually(shell_gone, what="the revoked token's host shell to end")
    finally:
        await agent.stop()
