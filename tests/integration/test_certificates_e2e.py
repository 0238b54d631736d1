"""End to end: certificate facts and failure diagnostics learned from the agent's real Caddy,
issued (or refused) by a real ACME CA (Pebble), with names resolved by a real DNS server."""

import asyncio
import hashlib
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

from tests.dns_server import DnsServer
from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator, eventually, serving
from tests.integration.edge_stacks import acme_stack, bind_domain, caddy_get
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_deploy_e2e import Stack

pytestmark = pytest.mark.docker

APP = "app.example.test"
# Resolves to an address where nothing listens: the name "points elsewhere".
FAR = "far.example.test"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(["--address=/example.test/127.0.0.1", f"--address=/{FAR}/127.0.0.2"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    """The coordinator resolves names through the same DNS server as the CA."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dns_resolver=dns_server.address,
    ) as harness:
        yield harness


async def _latest_attempt(
    stack: Stack, binding_id: str, status: str, *, retry_known: bool = False
) -> dict[str, Any]:
    """Wait until the binding's certificate has a latest attempt in ``status`` (and, with
    ``retry_known``, the time Caddy retries at); return the certificate."""
    found: dict[str, Any] = {}

    async def reached() -> bool:
        items = (await stack.call("GET", f"/certificates?domainBindingId={binding_id}"))["items"]
        latest = items[0]["latestAttempt"] if items else None
        if latest and latest["status"] == status and (latest["retryAfter"] or not retry_known):
            found.update(items[0])
            return True
        return False

    await eventually(reached, timeout=60, what=f"a certificate attempt {status}")
    return found


def _served_leaf(port: int, domain: str, roots: Path) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(roots))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_an_issued_certificate_is_reported_with_the_facts_of_the_one_served(
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
        binding_id = await bind_domain(stack, APP, confirm=True)
        await stack.finish(await stack.deploy())
        certificate = await _latest_attempt(stack, binding_id, "issued")
        leaf = await asyncio.to_thread(_served_leaf, tls_port, APP, pebble.issued_roots)
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert str(issuer).startswith("Pebble Intermediate CA")
    assert certificate["status"] == "active"
    assert certificate["source"] == "managed"
    assert certificate["domainName"] == APP
    assert certificate["issuer"] == issuer
    assert certificate["subjectAlternativeNames"] == [APP]
    assert certificate["fingerprint"] == hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    assert certificate["notBefore"] == _iso(leaf.not_valid_before_utc)
    assert certificate["expiresAt"] == _iso(leaf.not_valid_after_utc)
    assert certificate["keyAlgorithm"] == "ECDSA-P256"
    assert certificate["latestAttempt"]["expiresAt"] == certificate["expiresAt"]
    shown = await stack.call("GET", f"/certificates/{certificate['id']}")
    assert shown["fingerprint"] == certificate["fingerprint"]
    binding = await stack.call("GET", f"/domain-bindings/{binding_id}")
    assert [c["id"] for c in binding["certificates"]] == [certificate["id"]]


async def test_an_unverified_binding_is_served_on_http_and_gets_no_acme_order(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    async with acme_stack(coordinator, admin_token, caddy, tmp_path, dns_server) as (stack, _, _):
        binding_id = await bind_domain(stack, APP, confirm=False)
        await stack.finish(await stack.deploy())
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(
                f"http://127.0.0.1:{caddy.http_port}/",
                headers={"Host": APP},
                allow_redirects=False,
            ) as response,
        ):
            # Plain HTTP serves the app: no redirect to an HTTPS that has no certificate.
            assert (response.status, (await response.text()).strip()) == (200, "v1")
        # Caddy orders certificates for the names its HTTPS server's routes match: none.
        tls_routes = await caddy_get(caddy, "/config/apps/http/servers/berth-tls/routes")
        assert APP not in str(tls_routes)
        assert (await stack.call("GET", "/certificates"))["items"] == []
        status, refused, _ = await coordinator.call(
            "POST",
            "/certificates/issue-or-renew",
            token=admin_token,
            json={"domainBindingId": binding_id},
        )
        assert status == 409, refused
        assert "not confirmed" in refused["error"]["message"]
        assert (await stack.call("GET", "/certificates"))["items"] == []

        # Once ownership is confirmed, the next deployment moves it to HTTPS.
        await stack.call(
            "POST",
            f"/domain-bindings/{binding_id}/ownership-confirmations",
            {"method": "manual", "reason": "test domain on loopback"},
        )
        await stack.finish(await stack.deploy())
        tls_routes = await caddy_get(caddy, "/config/apps/http/servers/berth-tls/routes")
        assert APP in str(tls_routes)
        await _latest_attempt(stack, binding_id, "issued")


async def test_a_closed_challenge_port_is_diagnosed(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    closed = free_port()  # Pebble validates HTTP-01 on a port where nothing listens
    async with acme_stack(
        coordinator, admin_token, caddy, tmp_path, dns_server, challenge_port=closed
    ) as (stack, _, _):
        binding_id = await bind_domain(stack, APP, confirm=True)
        await stack.finish(await stack.deploy())
        certificate = await _latest_attempt(stack, binding_id, "failed", retry_known=True)
        # A retry now makes the edge try at once, not at the end of its 60 s back-off.
        # Through the CLI, as an operator would: the latest attempt failed, so it retries.
        cli = Cli(coordinator, admin_token, tmp_path / "cli")
        renewed = await cli.json("certs", "renew", APP)
        assert renewed["id"] == certificate["id"]
        assert renewed["latestAttempt"]["status"] == "requested"
        retried = {"attemptId": renewed["latestAttempt"]["id"]}

        async def retried_and_failed() -> bool:
            shown = await stack.call("GET", f"/certificates/{certificate['id']}")
            attempt = shown["latestAttempt"]
            return bool(attempt["id"] == retried["attemptId"] and attempt["status"] == "failed")

        await eventually(retried_and_failed, timeout=30, what="the retried attempt's outcome")
        shown = await stack.call("GET", f"/certificates/{certificate['id']}")
        assert shown["latestAttempt"]["reason"] == "retry"
        assert shown["latestAttempt"]["errorCode"] == "acme_challenge_unreachable"
        assert shown["latestAttempt"]["failedAt"] < certificate["latestAttempt"]["retryAfter"]
    attempt = certificate["latestAttempt"]
    assert certificate["status"] == "failed"
    assert attempt["errorCode"] == "acme_challenge_unreachable", attempt
    assert attempt["failurePhase"] == "challenge"
    assert attempt["retriable"] is True
    assert attempt["retryAfter"] is not None
    assert attempt["failureMessage"].startswith(f"challenge port {closed} unreachable")
    assert "connection refused" in attempt["failureMessage"]
    assert attempt["failureDetails"]["dialedAddress"] == f"127.0.0.1:{closed}"
    assert attempt["failureDetails"]["observedTargets"] == ["127.0.0.1"]


async def test_dns_pointing_elsewhere_is_diagnosed_with_the_observed_addresses(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    async with acme_stack(coordinator, admin_token, caddy, tmp_path, dns_server) as (stack, _, _):
        binding_id = await bind_domain(stack, FAR, confirm=True)
        await stack.finish(await stack.deploy())
        certificate = await _latest_attempt(stack, binding_id, "failed")
        # The CLI says it in words: what failed, what DNS answers, that a retry may help.
        cli = Cli(coordinator, admin_token, tmp_path / "cli")
        shown = await cli.ok("certs", "show", FAR)
        listed = await cli.ok("certs", "list")
    attempt = certificate["latestAttempt"]
    assert attempt["errorCode"] == "acme_dns_points_elsewhere", attempt
    assert attempt["retriable"] is True
    assert attempt["failureDetails"]["observedTargets"] == ["127.0.0.2"]
    assert attempt["failureDetails"]["expectedTargets"] == ["127.0.0.1"]
    assert "resolves to 127.0.0.2, not to this server (127.0.0.1)" in attempt["failureMessage"]
    assert "acme_dns_points_elsewhere (phase challenge)" in shown
    assert "DNS observed" in shown
    assert "127.0.0.2" in shown
    assert f"Retry now: berth certs renew {FAR}" in shown
    assert FAR in listed
    assert "acme_dns_points_elsewhere" in listed


async def test_a_ca_refusing_the_name_is_diagnosed_as_not_retriable(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    dns_server: DnsServer,
    tmp_path: Path,
) -> None:
    async with acme_stack(
        coordinator, admin_token, caddy, tmp_path, dns_server, blocklist=(APP,)
    ) as (stack, _, _):
        binding_id = await bind_domain(stack, APP, confirm=True)
        await stack.finish(await stack.deploy())
        certificate = await _latest_attempt(stack, binding_id, "failed")
    attempt = certificate["latestAttempt"]
    assert attempt["errorCode"] == "acme_ca_refused_name", attempt
    assert attempt["failurePhase"] == "ca"
    assert attempt["retriable"] is False
    assert attempt["failureDetails"]["problemType"].endswith(":rejectedIdentifier")


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))
