"""End to end: certificate facts and failure diagnostics learned from the agent's real Caddy,
issued (or refused) by a real ACME CA (Pebble), with names resolved by a real DNS server; a valid
certificate renewed early and a managed one revoked at the CA and replaced (Caddy 2.6 has no
command for either; that the renewal policy renews once is the ratio's arithmetic:
tests/unit/agent/test_certificate_renewal.py)."""

import asyncio
import hashlib
import json
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from agent.certificates.renewal import POLICY_ID_PREFIX
from tests.acme_server import Pebble
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


async def _bound_and_issued(stack: Stack) -> dict[str, Any]:
    """Bind APP (ownership confirmed), deploy, and wait for its certificate."""
    binding_id = await bind_domain(stack, APP, confirm=True)
    await stack.finish(await stack.deploy())
    return await _latest_attempt(stack, binding_id, "issued")


async def _until_served(tls_port: int, pebble: Pebble, fingerprint: str, what: str) -> None:
    """Wait until the edge serves APP with the certificate of ``fingerprint``."""

    async def served() -> bool:
        leaf = await asyncio.to_thread(_served_leaf, tls_port, APP, pebble.issued_roots)
        return hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest() == fingerprint

    await eventually(served, timeout=30, what=f"{what} served")


async def _events_of(stack: Stack, certificate_id: str) -> list[str]:
    """The audit trail's event types for the certificate."""
    items = (await stack.call("GET", "/audit-events?limit=500"))["items"]
    return [e["eventType"] for e in items if e["aggregateId"] == certificate_id]


def _status_at_pebble(pebble: Pebble, serial: int) -> str:
    """What Pebble's management API says of the certificate ``serial``."""
    context = ssl.create_default_context(cafile=str(pebble.listener_ca))
    url = f"https://127.0.0.1:{pebble.management_port}/cert-status-by-serial/{serial:x}"
    with urllib.request.urlopen(url, context=context, timeout=5) as answer:
        return str(json.load(answer)["Status"])


async def test_a_valid_certificate_is_renewed_early_and_served(
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
        first = await _bound_and_issued(stack)
        assert first["status"] == "active"

        # As an operator would: the certificate is valid and not due, and is renewed now.
        cli = Cli(coordinator, admin_token, tmp_path / "cli")
        asked = await cli.json("certs", "renew", APP)
        assert asked["id"] == first["id"]
        requested = asked["latestAttempt"]
        assert (requested["status"], requested["reason"]) == ("requested", "renew")

        async def renewed() -> bool:
            shown = await stack.call("GET", f"/certificates/{first['id']}")
            attempt = shown["latestAttempt"]
            return bool(attempt["id"] == requested["id"] and attempt["status"] == "issued")

        await eventually(renewed, timeout=60, what="the early renewal's outcome")
        shown = await stack.call("GET", f"/certificates/{first['id']}")
        assert shown["fingerprint"] != first["fingerprint"]
        assert shown["notBefore"] >= first["notBefore"]
        assert shown["status"] == "active"

        # The renewal policy is taken out once the new certificate is stored.
        async def policy_gone() -> bool:
            policies = await caddy_get(caddy, "/config/apps/tls/automation/policies")
            return POLICY_ID_PREFIX not in str(policies)

        await eventually(policy_gone, timeout=30, what="the renewal policy taken out")

        # Caddy serves the renewed certificate (its cache was replaced, not just the storage).
        await _until_served(tls_port, pebble, shown["fingerprint"], "the renewed certificate")

        # One renewal: the request and two issues (the first and the renewed) in the trail.
        events = await _events_of(stack, first["id"])
        assert events.count("certificate.issued") == 2, events
        assert events.count("certificate.renew-requested") == 1, events


async def test_a_managed_certificate_is_revoked_at_the_ca_and_replaced(
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
        first = await _bound_and_issued(stack)
        leaf = await asyncio.to_thread(_served_leaf, tls_port, APP, pebble.issued_roots)
        assert await asyncio.to_thread(_status_at_pebble, pebble, leaf.serial_number) == "Valid"

        answer = await stack.call("POST", f"/certificates/{first['id']}/revoke", {})
        assert answer == {"certificateId": first["id"]}
        # Revoked at the CA, signed with the certificate's key on the server.
        status = await asyncio.to_thread(_status_at_pebble, pebble, leaf.serial_number)
        assert status == "Revoked"

        # And replaced at once: a renewal attempt, a new certificate, served.
        async def replaced() -> bool:
            shown = await stack.call("GET", f"/certificates/{first['id']}")
            attempt = shown["latestAttempt"]
            return bool(
                attempt["reason"] == "renew"
                and attempt["status"] == "issued"
                and shown["fingerprint"] != first["fingerprint"]
            )

        await eventually(replaced, timeout=60, what="the revoked certificate replaced")
        shown = await stack.call("GET", f"/certificates/{first['id']}")
        assert shown["status"] == "active"

        await _until_served(tls_port, pebble, shown["fingerprint"], "the replacement")
        events = await _events_of(stack, first["id"])
        assert events.count("certificate.revoked") == 1, events

        # The CA unreachable: 502 with the reason, and nothing changes.
        pebble.stop()
        status_code, refused, _ = await coordinator.call(
            "POST", f"/certificates/{first['id']}/revoke", token=admin_token, json={}
        )
        assert status_code == 502, refused
        assert refused["error"]["code"] == "runtime_failed"
        assert "could not be asked" in refused["error"]["message"]
        after = await stack.call("GET", f"/certificates/{first['id']}")
        assert (after["status"], after["fingerprint"]) == ("active", shown["fingerprint"])
