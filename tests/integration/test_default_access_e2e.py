"""End to end: a default access policy gives a deployed resource a generated host name under a
base domain; the agent's real Caddy gets its certificate from a real ACME CA (Pebble) on the
first HTTPS request, after the agent's ask check, and refuses a name Berth does not route."""

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from agent.edge_tls import ask_url_in
from tests.dns_server import DnsServer
from tests.edge_proxy import Caddy
from tests.harness import Coordinator
from tests.integration.edge_stacks import acme_stack, caddy_get
from tests.integration.test_cli_workspace import Cli
from tests.tls_material import issue_for

pytestmark = pytest.mark.docker

BASE = "apps.example.test"
GENERATED = f"web-production-shop.{BASE}"
UNROUTED = f"nobody-routes-this.{BASE}"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """Every name under the base domain resolves to this machine (a wildcard DNS record)."""
    server = DnsServer([f"--address=/{BASE}/127.0.0.1"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dns_resolver=dns_server.address,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _handshake(port: int, name: str, roots: Path) -> x509.Certificate:
    """A verified TLS handshake with SNI ``name``; the leaf Caddy served."""
    context = ssl.create_default_context(cafile=str(roots))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def _caddy_post(caddy: Caddy, path: str, body: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(caddy.admin_url + path, json=body, headers={"Origin": caddy.admin_url}) as r,
    ):
        assert r.status == 200, await r.text()


def _stored(caddy: Caddy, name: str) -> list[Path]:
    """Certificates Caddy keeps for ``name`` (any issuer)."""
    return list((caddy.data_dir / "certificates").glob(f"*/{name}/{name}.crt"))


async def _https_get(port: int, sni: str, host: str, roots: Path) -> tuple[int, str, Any]:
    context = ssl.create_default_context(cafile=str(roots))
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session,
        session.get(
            f"https://127.0.0.1:{port}/",
            headers={"Host": host},
            server_hostname=sni,
            allow_redirects=False,
        ) as response,
    ):
        return response.status, await response.text(), response.headers


async def test_a_generated_name_gets_its_certificate_on_demand_and_an_unrouted_one_none(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    async with acme_stack(coordinator, admin_token, caddy, tmp_path, dns_server) as (
        stack,
        pebble,
        tls_port,
    ):
        # Through the CLI, as an operator would.
        cli = Cli(coordinator, admin_token, tmp_path / "cli")
        assert "No policy" in await cli.ok("access", "show")
        saved = await cli.json("access", "set", BASE.upper())
        shown = await cli.json("access", "show")
        assert (shown["policy"]["id"], shown["policy"]["baseDomain"]) == (saved["id"], BASE)
        assert BASE in await cli.ok("access", "list")
        await stack.finish(await stack.deploy())
        tls_routes = await caddy_get(caddy, "/config/apps/http/servers/berth-tls/routes")
        assert GENERATED in str(tls_routes)
        automation = await caddy_get(caddy, "/config/apps/tls/automation")
        on_demand = automation["policies"][0]
        assert (on_demand["subjects"], on_demand["on_demand"]) == ([f"*.{BASE}"], True)
        ask = ask_url_in(automation)  # in the form this Caddy takes
        assert ask.startswith("http://127.0.0.1:")
        preview = await stack.call(
            "GET",
            f"/resources/{stack.resource_id}/proxy-configuration?includeDiagnostics=true",
        )
        assert preview["status"] == "applied", preview
        [generated] = [r for r in preview["routes"] if r["hostname"] == GENERATED]
        assert (generated["scheme"], generated["tlsMode"], generated["source"]) == (
            "https",
            "on-demand",
            "generated-default",
        )
        assert generated["appliedRouteContext"]["routeId"].endswith(".default-access")
        [tls] = [t for t in preview["diagnostics"]["tlsRoutes"] if t["hostname"] == GENERATED]
        assert tls["automation"] == "acme-on-demand"
        shown = await stack.call("GET", f"/resources/{stack.resource_id}")
        latest = shown["accessSummary"]["latestGeneratedAccessRoute"]
        assert (latest["url"], latest["scheme"]) == (f"https://{GENERATED}", "https")
        # Nothing is ordered when the route is added: only the first handshake asks for it.
        assert _stored(caddy, GENERATED) == []

        # The ask check itself: the routed name yes, anything else no.
        async with aiohttp.ClientSession() as session:
            for name, status in ((GENERATED, 200), (UNROUTED, 403), ("example.org", 403)):
                async with session.get(ask, params={"domain": name}) as response:
                    assert response.status == status, name

        leaf = await asyncio.to_thread(_handshake, tls_port, GENERATED, pebble.issued_roots)
        issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert str(issuer).startswith("Pebble Intermediate CA")
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == [GENERATED]
        assert len(_stored(caddy, GENERATED)) == 1

        status, body, _ = await _https_get(tls_port, GENERATED, GENERATED, pebble.issued_roots)
        assert (status, body.strip()) == (200, "v1")
        # Plain HTTP redirects to HTTPS.
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{caddy.http_port}/cart?x=1",
                headers={"Host": GENERATED},
                allow_redirects=False,
            ) as response,
        ):
            assert response.status == 308
            assert response.headers["Location"] == f"https://{GENERATED}:{tls_port}/cart?x=1"

        # A name Berth does not route: the handshake fails and nothing is ordered for it.
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(_handshake, tls_port, UNROUTED, pebble.issued_roots)
        assert _stored(caddy, UNROUTED) == []

        # HTTPS catch-all: a connection whose certificate is valid but whose Host is a
        # name nothing routes gets the access-failure page, not an empty answer.
        status, body, headers = await _https_get(tls_port, GENERATED, UNROUTED, pebble.issued_roots)
        assert status == 404
        assert "X-Berth-Request-Id" in headers
        assert headers["X-Berth-Request-Id"] in body

        # With a wildcard certificate for the base domain in Caddy (as an imported or a
        # DNS-01 one would be), an unknown name under it completes the handshake and gets
        # the 404 page instead of a TLS alert.
        wildcard = issue_for([f"*.{BASE}"])
        roots = tmp_path / "wildcard-root.pem"
        roots.write_bytes(wildcard.root.public_bytes(Encoding.PEM))
        loaded = {"certificate": wildcard.chain(), "key": wildcard.key_pem(), "tags": ["t"]}
        await _caddy_post(caddy, "/config/apps/tls/certificates", {"load_pem": [loaded]})
        status, body, headers = await _https_get(tls_port, UNROUTED, UNROUTED, roots)
        assert status == 404
        assert headers["X-Berth-Request-Id"] in body
    assert _stored(caddy, UNROUTED) == []


async def test_certificate_mode_serves_generated_names_only_with_the_wildcard_the_edge_holds(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    async with acme_stack(coordinator, admin_token, caddy, tmp_path, dns_server) as (
        stack,
        pebble,
        tls_port,
    ):
        await stack.call(
            "POST",
            "/default-access-domain-policies",
            {
                "scope": {"kind": "deployment-target", "serverId": stack.server_id},
                "mode": "custom",
                "baseDomain": BASE,
                "tlsMode": "certificate",
            },
        )
        await stack.finish(await stack.deploy())
        tls_routes = await caddy_get(caddy, "/config/apps/http/servers/berth-tls/routes")
        assert GENERATED in str(tls_routes)
        ask = ask_url_in(await caddy_get(caddy, "/config/apps/tls/automation"))
        assert ask.startswith("http://127.0.0.1:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(ask, params={"domain": GENERATED}) as response,
        ):
            assert response.status == 403  # never ordered, even with a CA at hand
        # No certificate held yet: the handshake fails, nothing is ordered.
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(_handshake, tls_port, GENERATED, pebble.issued_roots)

        wildcard = issue_for([f"*.{BASE}"])
        roots = tmp_path / "wildcard-root.pem"
        roots.write_bytes(wildcard.root.public_bytes(Encoding.PEM))
        loaded = {"certificate": wildcard.chain(), "key": wildcard.key_pem(), "tags": ["t"]}
        await _caddy_post(caddy, "/config/apps/tls/certificates", {"load_pem": [loaded]})
        leaf = await asyncio.to_thread(_handshake, tls_port, GENERATED, roots)
        assert leaf.serial_number == wildcard.leaf.serial_number
        status, body, _ = await _https_get(tls_port, GENERATED, GENERATED, roots)
        assert (status, body.strip()) == (200, "v1")
        preview = await stack.call(
            "GET",
            f"/resources/{stack.resource_id}/proxy-configuration?includeDiagnostics=true",
        )
        [tls] = [t for t in preview["diagnostics"]["tlsRoutes"] if t["hostname"] == GENERATED]
        assert (tls["tlsMode"], tls["automation"]) == ("certificate", "disabled")
    assert _stored(caddy, GENERATED) == []
