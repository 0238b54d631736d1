"""End to end: a valid certificate renewed early on request, and a managed one revoked at the CA
and replaced, through a real Caddy 2.6 (which has no command for either) and a real ACME CA
(Pebble). That the renewal policy renews once is the ratio's arithmetic:
tests/unit/agent/test_certificate_renewal.py."""

import asyncio
import hashlib
import json
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from agent.certificates.renewal import POLICY_ID_PREFIX
from tests.acme_server import Pebble
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


def _status_at_pebble(pebble: Pebble, serial: int) -> str:
    """What Pebble's management API says of the certificate ``serial``."""
    context = ssl.create_default_context(cafile=str(pebble.listener_ca))
    url = f"https://127.0.0.1:{pebble.management_port}/cert-status-by-serial/{serial:x}"
    with urllib.request.urlopen(url, context=context, timeout=5) as answer:
        return str(json.load(answer)["Status"])


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
        binding_id = await bind_domain(stack, APP, confirm=True)
        await stack.finish(await stack.deploy())
        first = await _latest_attempt(stack, binding_id, "issued")
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

        async def served() -> bool:
            new = await asyncio.to_thread(_served_leaf, tls_port, APP, pebble.issued_roots)
            digest = hashlib.sha256(new.public_bytes(Encoding.DER)).hexdigest()
            return bool(digest == shown["fingerprint"])

        await eventually(served, timeout=30, what="the replacement served")
        events = [
            e["eventType"]
            for e in (await stack.call("GET", "/audit-events?limit=500"))["items"]
            if e["aggregateId"] == first["id"]
        ]
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
