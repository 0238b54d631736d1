"""End to end: a wildcard certificate ordered by the coordinator over DNS-01 (bind9 taking
TSIG-signed RFC 2136 updates, Pebble validating), pushed to the agent and served by its real
Caddy for two host names; a wrong TSIG secret is diagnosed on the attempt."""

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from coordinator.db.dns01_models import DnsProvider, WildcardCertificate
from coordinator.secrets import Keyring
from shared.certificate_facts import fingerprint
from tests.acme_server import Pebble
from tests.bind_server import ALGORITHM, KEY_NAME, BindServer
from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator, eventually
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_deploy_e2e import _stack

pytestmark = pytest.mark.docker

ZONE = "dns01.test"
BASE = f"apps.{ZONE}"
HOSTS = (f"one.{BASE}", f"two.{BASE}")
WRONG_SECRET = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIHNlY3JldCE="


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[BindServer]:
    server = BindServer(tmp_path / "bind", ZONE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pebble(tmp_path: Path, bind: BindServer) -> Iterator[Pebble]:
    ca = Pebble(tmp_path / "pebble", free_port(), free_port(), bind.address)
    ca.start()
    try:
        yield ca
    finally:
        ca.stop()


@pytest.fixture
async def dns01_coordinator(
    tmp_path: Path, database_url: str, pebble: Pebble
) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        # The DNS server is on loopback: the operator allows private targets, as tests must.
        allow_private_webhook_targets=True,
        dns01_acme_directory=pebble.directory_url,
        dns01_acme_ca_bundle=str(pebble.listener_ca),
        dns01_acme_email="ops@dns01.test",
        dns01_visible_within_seconds=10,
        # The renewal loop looks for due certificates every second (an hour by default).
        dns01_check_interval_seconds=1,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _get(port: int, host: str, roots: Path) -> tuple[int, x509.Certificate]:
    """An HTTPS GET to the edge for ``host``, verified against ``roots``: status and leaf
    (``OSError`` when the edge drops the connection)."""
    context = ssl.create_default_context(cafile=str(roots))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = tls.recv(64).decode(errors="replace")
    if not head:
        # Closed after the handshake with no answer: a config write replaced the server that
        # took the connection (Caddy 2.11.7 reloads in a few ms, so a poll lands in one often).
        # The edge did not answer this time, as for any other dropped connection.
        raise ConnectionError(f"the edge closed the connection for {host} without answering")
    assert der is not None
    return int(head.split(" ", 2)[1]), x509.load_der_x509_certificate(der)


async def _provider(c: Coordinator, token: str, bind: BindServer, name: str, secret: str) -> str:
    status, answer, _ = await c.call(
        "POST",
        "/dns-providers",
        token=token,
        json={
            "name": name,
            "serverAddress": bind.address,
            "zone": ZONE,
            "tsigKeyName": KEY_NAME,
            "tsigAlgorithm": ALGORITHM,
            "tsigSecret": secret,
        },
    )
    assert status == 201, answer
    return str(answer["id"])


async def _latest(c: Coordinator, token: str, certificate_id: str) -> dict[str, Any]:
    status, shown, _ = await c.call("GET", f"/wildcard-certificates/{certificate_id}", token=token)
    assert status == 200, shown
    return dict(shown)


async def test_a_wildcard_over_dns01_serves_two_host_names_and_a_wrong_key_is_diagnosed(
    dns01_coordinator: Coordinator,
    bind: BindServer,
    pebble: Pebble,
    caddy: Caddy,
    tmp_path: Path,
) -> None:
    c = dns01_coordinator
    token = await c.bootstrap()

    # A wrong TSIG secret: the attempt fails in the DNS phase, says so, and is not retried.
    wrong = await _provider(c, token, bind, "wrong-key", WRONG_SECRET)
    status, answer, _ = await c.call(
        "POST",
        "/wildcard-certificates",
        token=token,
        json={"domainName": f"bad.{ZONE}", "dnsProviderId": wrong},
    )
    assert status == 201, answer
    bad_id = answer["certificateId"]

    async def diagnosed() -> bool:
        latest = (await _latest(c, token, bad_id))["latestAttempt"]
        return bool(latest and latest["status"] == "failed")

    await eventually(diagnosed, timeout=60, what="the wrong-key attempt to fail")
    bad = await _latest(c, token, bad_id)
    failed = bad["latestAttempt"]
    assert failed["errorCode"] == "dns_tsig_refused", failed
    assert failed["failurePhase"] == "dns"
    assert failed["retriable"] is False
    assert failed["retryAfter"] is None
    assert KEY_NAME in failed["failureMessage"]
    assert bad["status"] == "failed"
    assert bind.txt(f"_acme-challenge.bad.{ZONE}") == []
    cli = Cli(c, token, tmp_path / "cli")
    said = await cli.ok("wildcards", "show", bad_id)
    assert "dns_tsig_refused" in said
    assert "fix the cause first" in said

    # The right key: the secret is sealed at rest and masked in every answer.
    # Added through the CLI, as an operator would, with the secret from a file.
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text(bind.secret)
    said = await cli.ok(
        "dns-providers", "add", "primary", "--server", bind.address, "--zone", ZONE,
        "--key-name", KEY_NAME, "--algorithm", ALGORITHM, "--secret-file", str(secret_file),
    )  # fmt: skip
    assert bind.secret not in said
    [good] = [
        p["id"]
        for p in (await cli.json("dns-providers", "list"))["items"]
        if p["name"] == "primary"
    ]
    status, shown, _ = await c.call("GET", f"/dns-providers/{good}", token=token)
    assert status == 200, shown
    assert shown["tsigSecret"] == "********"
    assert bind.secret not in str(shown)
    row = await DnsProvider.get(id=good)
    assert bind.secret not in row.tsig_secret_encrypted
    keyring = Keyring.load_or_create(c.settings().data_dir)
    assert keyring.decrypt(row.tsig_secret_encrypted, f"dns-provider:{good}") == bind.secret

    tls_port = free_port()
    stack = await _stack(
        c,
        token,
        caddy,
        tmp_path,
        agent_env={
            "BERTH_AGENT_EDGE_TLS_LISTEN": f"127.0.0.1:{tls_port}",
            # Nothing answers here: had Caddy ordered certificates itself, it could not get one.
            "BERTH_AGENT_ACME_DIRECTORY": f"https://127.0.0.1:{free_port()}/dir",
            "BERTH_AGENT_CADDY_DATA_DIR": str(caddy.data_dir),
            "BERTH_AGENT_CERTIFICATE_SCAN_SECONDS": "1",
        },
    )
    try:
        for host in HOSTS:
            await stack.call(
                "POST",
                "/domain-bindings",
                {
                    "projectId": stack.project_id,
                    "environmentId": stack.environment_id,
                    "resourceId": stack.resource_id,
                    "serverId": stack.server_id,
                    "domainName": host,
                    "tlsMode": "imported",
                },
            )
        status, answer, _ = await c.call(
            "POST",
            "/wildcard-certificates",
            token=token,
            json={"domainName": BASE, "dnsProviderId": good},
        )
        assert status == 201, answer
        wildcard_id = answer["certificateId"]

        async def active() -> bool:
            return bool((await _latest(c, token, wildcard_id))["status"] == "active")

        await eventually(active, timeout=60, what="the wildcard certificate issued")
        issued = await _latest(c, token, wildcard_id)
        assert sorted(issued["subjectAlternativeNames"]) == sorted([f"*.{BASE}", BASE])
        assert "Pebble" in issued["issuer"]
        assert issued["challengeType"] == "dns-01"
        assert issued["latestAttempt"]["status"] == "issued"
        stored = await WildcardCertificate.get(id=wildcard_id)
        assert stored.private_key_encrypted is not None
        assert "PRIVATE KEY" not in stored.private_key_encrypted

        # Deployed after issuance: the routes carry the names the wildcard covers.
        await stack.finish(await stack.deploy())

        async def serves(host: str, expected: str) -> bool:
            try:
                status, leaf = await asyncio.to_thread(_get, tls_port, host, pebble.issued_roots)
            except (OSError, ssl.SSLError):
                return False
            return status == 200 and fingerprint(leaf) == expected

        for host in HOSTS:
            await eventually(
                lambda h=host: serves(h, issued["fingerprint"]),  # type: ignore[misc]
                timeout=30,
                what=f"{host} served over HTTPS with the wildcard",
            )

        # Renewal on request: a new certificate is ordered, stored and served in its place.
        status, answer, _ = await c.call(
            "POST", f"/wildcard-certificates/{wildcard_id}/retries", token=token, json={}
        )
        assert status == 201, answer

        async def renewed() -> bool:
            latest = (await _latest(c, token, wildcard_id))["latestAttempt"]
            return bool(latest["id"] == answer["attemptId"] and latest["status"] == "issued")

        await eventually(renewed, timeout=60, what="the renewal issued")
        after = await _latest(c, token, wildcard_id)
        assert after["latestAttempt"]["reason"] == "renew"
        assert after["fingerprint"] != issued["fingerprint"]
        await eventually(
            lambda: serves(HOSTS[0], after["fingerprint"]),
            timeout=30,
            what="the renewed certificate served",
        )

        # Renewal by the coordinator's own loop once the certificate is due (a third of its
        # lifetime before expiry; Pebble's last five years, so the due time is moved here).
        before = {a["id"] for a in after["attempts"]}
        await WildcardCertificate.filter(id=wildcard_id).update(next_attempt_at=datetime.now(UTC))

        async def renewed_by_the_loop() -> bool:
            shown = await _latest(c, token, wildcard_id)
            latest = shown["latestAttempt"]
            return bool(latest["id"] not in before and latest["status"] == "issued")

        await eventually(renewed_by_the_loop, timeout=60, what="the loop's renewal issued")
        final = await _latest(c, token, wildcard_id)
        assert final["latestAttempt"]["reason"] == "renew"
        assert final["fingerprint"] != after["fingerprint"]
        # Not due again until a third of the new certificate's lifetime before it expires.
        stored = await WildcardCertificate.get(id=wildcard_id)
        assert stored.next_attempt_at is not None
        assert stored.next_attempt_at > datetime.now(UTC) + timedelta(days=365)

        # Deleted: the edge stops serving it (nothing else holds a certificate for the names).
        status, answer, _ = await c.call(
            "DELETE",
            f"/wildcard-certificates/{wildcard_id}",
            token=token,
            json={"confirmation": {"certificateId": wildcard_id}},
        )
        assert status == 200, answer

        async def unloaded() -> bool:
            try:
                _, leaf = await asyncio.to_thread(_get, tls_port, HOSTS[0], pebble.issued_roots)
            except ssl.SSLError:
                return True  # the edge answers, with no certificate for the name any more
            except OSError:
                return False  # the edge itself is not answering: not the point here
            return bool(fingerprint(leaf) != final["fingerprint"])

        await eventually(unloaded, timeout=30, what="the deleted wildcard unloaded")
    finally:
        await stack.agent.stop()
