"""End to end: a bound domain gets a certificate from a real ACME CA (Pebble) through the edge."""

import ssl
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from agent.edge_tls_map import hosts_route_id
from tests.dns_server import DnsServer
from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator, eventually
from tests.integration.edge_stacks import acme_stack, bind_domain, caddy_get

pytestmark = pytest.mark.docker


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    # Every name under example.test resolves to loopback, where the agent's Caddy listens.
    server = DnsServer(["--address=/example.test/127.0.0.1"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


# HTTP-01 (the default off port 443), and TLS-ALPN-01 alone: then Pebble's HTTP-01 port is one
# nothing listens on, so only an answer in the HTTPS handshake can get the certificate.
@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
async def test_a_bound_domain_is_served_over_https_with_a_certificate_from_the_acme_ca(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
    challenge: str,
) -> None:
    async with acme_stack(
        coordinator,
        admin_token,
        caddy,
        tmp_path,
        dns_server,
        challenge_port=None if challenge == "http-01" else free_port(),
        agent_env={"BERTH_AGENT_ACME_CHALLENGES": challenge},
    ) as (
        stack,
        pebble,
        tls_port,
    ):
        binding_id = await bind_domain(stack, "app.example.test", confirm=True)
        shown = await stack.finish(await stack.deploy())
        assert shown["deployment"]["status"] == "succeeded", shown
        binding = await stack.call("GET", f"/domain-bindings/{binding_id}")
        assert binding["proxyReadiness"] == "ready", binding

        # Only Pebble's freshly made root is trusted: a certificate from anywhere else fails.
        trust = ssl.create_default_context(cafile=str(pebble.issued_roots))
        served: list[tuple[int, str]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def https_ok() -> bool:
                try:
                    async with session.get(
                        f"https://127.0.0.1:{tls_port}/",
                        headers={"Host": "app.example.test"},
                        server_hostname="app.example.test",
                        ssl=trust,
                    ) as response:
                        served.append((response.status, (await response.text()).strip()))
                except aiohttp.ClientError:
                    return False  # no certificate yet: the handshake fails
                return served[-1] == (200, "v1")

            await eventually(https_ok, timeout=60, what="HTTPS with Pebble's certificate")
            # Served by the resource's HTTPS host route, whose host matcher is what made Caddy
            # order the certificate (agent/edge_tls_map.py).
            match = await caddy_get(caddy, f"/id/{hosts_route_id(stack.resource_id)}/match")
            assert match == [{"host": ["app.example.test"]}]
            async with session.get(
                f"http://127.0.0.1:{caddy.http_port}/page?x=1",
                headers={"Host": "app.example.test"},
                allow_redirects=False,
            ) as response:
                assert response.status == 308
                assert response.headers["Location"] == (
                    f"https://app.example.test:{tls_port}/page?x=1"
                )
