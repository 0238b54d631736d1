"""Edge stack helpers: domain bindings, and a real ACME CA (Pebble) that the agent's Caddy
orders certificates from (the certificate and HTTPS tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.acme_server import Pebble
from tests.dns_server import DnsServer
from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator
from tests.integration.test_deploy_e2e import Stack, _stack


@asynccontextmanager
async def acme_stack(
    coordinator: Coordinator,
    token: str,
    caddy: Caddy,
    tmp_path: Path,
    dns_server: DnsServer,
    *,
    challenge_port: int | None = None,
    blocklist: tuple[str, ...] = (),
    agent_env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Stack, Pebble, int]]:
    """A running Pebble (validating HTTP-01 on ``challenge_port``, Caddy's by default) and a
    stack whose agent's Caddy orders from it on its own TLS port; both stopped on the way out.
    Yields the stack, the CA and that TLS port. ``agent_env`` adds to the agent's settings."""
    tls_port = free_port()
    pebble = Pebble(
        tmp_path / "pebble",
        caddy.http_port if challenge_port is None else challenge_port,
        tls_port,
        dns_server.address,
        blocklist=blocklist,
    )
    pebble.start()
    try:
        stack = await _stack(
            coordinator,
            token,
            caddy,
            tmp_path,
            agent_env={
                "BERTH_AGENT_EDGE_TLS_LISTEN": f"127.0.0.1:{tls_port}",
                "BERTH_AGENT_ACME_DIRECTORY": pebble.directory_url,
                "BERTH_AGENT_ACME_CA_ROOTS": str(pebble.listener_ca),
                "BERTH_AGENT_ACME_EMAIL": "ops@example.test",
                "BERTH_AGENT_CADDY_DATA_DIR": str(caddy.data_dir),
                "BERTH_AGENT_CERTIFICATE_SCAN_SECONDS": "1",
                **(agent_env or {}),
            },
            server_extra={"host": "127.0.0.1"},
        )
        try:
            yield stack, pebble, tls_port
        finally:
            await stack.agent.stop()
    finally:
        pebble.stop()


async def bind_domain(stack: Stack, domain: str, *, confirm: bool = False, **extra: Any) -> str:
    """Bind ``domain`` to the stack's resource (``extra``: more request fields), its ownership
    confirmed by hand if ``confirm`` (only then is a certificate ordered); the binding's id."""
    answer = await stack.call(
        "POST",
        "/domain-bindings",
        {
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "resourceId": stack.resource_id,
            "serverId": stack.server_id,
            "domainName": domain,
            **extra,
        },
    )
    binding_id = str(answer["id"])
    if confirm:
        await stack.call(
            "POST",
            f"/domain-bindings/{binding_id}/ownership-confirmations",
            {"method": "manual", "reason": "test domain on loopback"},
        )
    return binding_id


async def caddy_get(caddy: Caddy, path: str) -> Any:
    """The JSON at ``path`` of the Caddy admin API (``/config/...``), as Caddy has it now."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(caddy.admin_url + path, headers={"Origin": caddy.admin_url}) as response,
    ):
        return await response.json()
