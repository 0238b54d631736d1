"""End to end: an imported certificate is checked, stored with its key encrypted, pushed to the
agent, and served by the agent's real Caddy instead of an ACME one."""

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from coordinator.db.certificate_models import Certificate
from coordinator.secrets import Keyring
from shared.certificate_facts import fingerprint
from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator, eventually
from tests.integration.edge_stacks import bind_domain
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_deploy_e2e import _stack
from tests.tls_material import issue_for

pytestmark = pytest.mark.docker

APP = "app.example.test"


def _served_leaf(port: int, roots: Path) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(roots))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=APP) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_an_imported_certificate_is_checked_stored_and_served_by_the_edge(
    coordinator: Coordinator, admin_token: str, caddy: Caddy, tmp_path: Path
) -> None:
    tls_port = free_port()
    stack = await _stack(
        coordinator,
        admin_token,
        caddy,
        tmp_path,
        agent_env={
            "BERTH_AGENT_EDGE_TLS_LISTEN": f"127.0.0.1:{tls_port}",
            # Nothing answers here: had Caddy ordered a certificate, it could not have one.
            "BERTH_AGENT_ACME_DIRECTORY": f"https://127.0.0.1:{free_port()}/dir",
            "BERTH_AGENT_CADDY_DATA_DIR": str(caddy.data_dir),
            "BERTH_AGENT_CERTIFICATE_SCAN_SECONDS": "1",
        },
    )
    try:
        binding_id = await bind_domain(stack, APP, tlsMode="imported")
        good = issue_for([APP])
        wrong_name = issue_for(["else.example.test"])
        expired = issue_for([APP], expired=True)
        pem = serialization.Encoding.PEM
        # Each case breaks one rule only (the certificate's own key unless the key is the fault).
        cases = [
            ("key-matches", good.chain(), good.key_pem(issue_for([APP]).key)),
            ("name-covered", wrong_name.chain(), wrong_name.key_pem()),
            ("not-expired", expired.chain(), expired.key_pem()),
            (
                "chain-ordered",
                good.root.public_bytes(pem).decode() + good.leaf.public_bytes(pem).decode(),
                good.key_pem(),
            ),
            ("chain-parsable", "-----BEGIN CERTIFICATE-----\nnot pem\n", good.key_pem()),
            ("key-parsable", good.chain(), "not a key"),
        ]
        for rule, chain, key in cases:
            status, answer, _ = await coordinator.call(
                "POST",
                "/certificates/import",
                token=admin_token,
                json={
                    "domainBindingId": binding_id,
                    "certificateChain": chain,
                    "privateKey": key,
                },
            )
            assert status == 400, (rule, status, answer)
            assert answer["error"]["details"]["rule"] == rule, answer
        assert (await stack.call("GET", "/certificates"))["items"] == []

        # Imported through the CLI, as an operator would, from PEM files.
        chain_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
        chain_file.write_text(good.chain())
        key_file.write_text(good.key_pem())
        cli = Cli(coordinator, admin_token, tmp_path / "cli")
        said = await cli.ok("certs", "import", APP, str(chain_file), str(key_file))
        assert "Berth Import Test Root" in said
        assert fingerprint(good.leaf) in said
        [item] = (await stack.call("GET", "/certificates"))["items"]
        imported = {"certificateId": item["id"], "attemptId": item["latestAttempt"]["id"]}
        shown = await stack.call("GET", f"/certificates/{imported['certificateId']}")
        assert shown["source"] == "imported"
        assert shown["status"] == "active"
        assert shown["fingerprint"] == fingerprint(good.leaf)
        assert shown["issuer"] == "Berth Import Test Root"
        assert shown["latestAttempt"]["id"] == imported["attemptId"]
        assert shown["latestAttempt"]["status"] == "imported"
        assert "privateKey" not in shown
        assert "PRIVATE KEY" not in str(shown)
        # At rest the key is a Keyring ciphertext bound to its row, never the PEM.
        row = await Certificate.get(id=imported["certificateId"])
        assert row.private_key_encrypted is not None
        assert "PRIVATE KEY" not in row.private_key_encrypted
        assert (
            Keyring.load_or_create(coordinator.settings().data_dir).decrypt(
                row.private_key_encrypted, f"certificate:{row.id}"
            )
            == good.key_pem()
        )

        await stack.finish(await stack.deploy())
        roots = tmp_path / "import-root.pem"
        roots.write_bytes(good.root.public_bytes(serialization.Encoding.PEM))
        served: list[str] = []

        async def serves_the_import() -> bool:
            try:
                leaf = await asyncio.to_thread(_served_leaf, tls_port, roots)
            except (OSError, ssl.SSLError):
                return False
            served.append(fingerprint(leaf))
            return served[-1] == fingerprint(good.leaf)

        await eventually(serves_the_import, timeout=30, what="the imported certificate served")

        certificate_id = imported["certificateId"]
        confirmation = {"confirmation": {"certificateId": certificate_id}}
        status, answer, _ = await coordinator.call(
            "DELETE", f"/certificates/{certificate_id}", token=admin_token, json=confirmation
        )
        assert status == 409, answer  # in use
        await stack.call("POST", f"/certificates/{certificate_id}/revoke", {})

        async def unloaded() -> bool:
            try:
                leaf = await asyncio.to_thread(_served_leaf, tls_port, roots)
            except (OSError, ssl.SSLError):
                return True  # no certificate for the name any more
            return fingerprint(leaf) != fingerprint(good.leaf)

        await eventually(unloaded, timeout=30, what="the revoked certificate unloaded")
        assert (await stack.call("GET", f"/certificates/{certificate_id}"))["status"] == "revoked"
        await stack.call("DELETE", f"/certificates/{certificate_id}", confirmation)
        status, answer, _ = await coordinator.call(
            "GET", f"/certificates/{certificate_id}", token=admin_token
        )
        assert status == 404, answer
    finally:
        await stack.agent.stop()
