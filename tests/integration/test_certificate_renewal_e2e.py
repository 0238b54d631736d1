"""End to end: a valid certificate renewed early on request, through a real Caddy 2.6 (which has
no command for it) and a real ACME CA (Pebble), and then served. That the renewal policy
renews once is the ratio's arithmetic: tests/unit/agent/test_certificate_renewal.py."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from agent.certificates.renewal import POLICY_ID_PREFIX
from tests.dns_server import DnsServer
from tests.edge_proxy import Caddy
from tests.harness import Coordinator, eventually, serving
from tests.integration.edge_stacks import acme_stack, bind_domain, caddy_get
from tests.integration.test_certificates_e2e import _latest_attempt, _served_leaf
from tests.integration.test_cli_workspace import Cli

pytestmark = pytest.mark.docker

APP = "renew.example.test"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(["--address=/example.test/127.0.0.1"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    async with serving(
        tmp_path / "coordinator", database_url, dns_resolver=dns_server.address
    ) as harness:
        yield harness


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
        binding_id = await bind_domain(stack, APP, confirm=True)
        await stack.finish(await stack.deploy())
        first = await _latest_attempt(stack, binding_id, "issued")
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
        async def served() -> bool:
            leaf = await asyncio.to_thread(_served_leaf, tls_port, APP, pebble.issued_roots)
            digest = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
            return bool(digest == shown["fingerprint"])

        await eventually(served, timeout=30, what="the renewed certificate served")

        # One renewal: the request and two issues (the first and the renewed) in the trail.
        events = [
            e["eventType"]
            for e in (await stack.call("GET", "/audit-events?limit=500"))["items"]
            if e["aggregateId"] == first["id"]
        ]
        assert events.count("certificate.issued") == 2, events
        assert events.count("certificate.renew-requested") == 1, events
