"""What the agent loads at start-up: no aiohttp, no cryptography until there is a certificate.

The import floor is most of the agent's resident memory at idle (bench/agent_cost.py), so
modules a server without TLS never uses stay out of it; the certificate readers still read
real certificates (made here with ``cryptography``) once they have some.
"""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.certificates import imported
from agent.certificates.storage import read_storage
from shared.messages.certificates import ImportedCertificate

ROOT = Path(__file__).resolve().parents[3]
# Loaded on first use only (each costs resident memory the idle agent does not need).
# aiohttp: the agent's HTTP is agent.http_client / agent.http_server (h11); this also catches
# a dependency that would bring it back.
# cryptography: the link signs with libcrypto directly (agent/identity.py).
NOT_AT_START = ("cryptography", "shared.certificate_facts", "docker", "aiohttp", "yarl")


def _loaded_after(code: str) -> set[str]:
    """Modules a fresh interpreter has loaded after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def _pem(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# What ``python -m agent`` and ``berth-agent`` do before loading the agent.
AS_THE_AGENT_STARTS = "from shared import wire_mode\nwire_mode.use_lean()\n"


def test_starting_the_agent_loads_no_cryptography_no_docker_sdk_and_no_aiohttp() -> None:
    loaded = _loaded_after(AS_THE_AGENT_STARTS + "import agent.cli, agent.daemon")
    assert "agent.daemon" in loaded
    assert not {m for m in loaded if m.startswith(NOT_AT_START)}


def test_the_agent_process_loads_no_pydantic_but_its_lean_wire_layer() -> None:
    loaded = _loaded_after(
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['berth-agent', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    runpy.run_module('agent', run_name='__main__')\n"
        "import agent.daemon, agent.logstream, agent.monitoring, agent.terminal\n"
    )
    assert {"agent.cli", "agent.daemon", "shared.messages", "shared.wire_lean"} <= loaded
    assert not {m for m in loaded if m.split(".")[0] in ("pydantic", "pydantic_core")}


def test_a_process_that_already_declared_pydantic_models_cannot_switch_layers() -> None:
    script = (
        "import shared.messages\n"
        "from shared import wire_mode\n"
        "try:\n"
        "    wire_mode.use_lean()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "before the lean wire layer was selected" in done.stdout


def test_an_empty_certificate_store_is_read_without_loading_x509(tmp_path: Path) -> None:
    (tmp_path / "certificates" / "acme").mkdir(parents=True)
    loaded = _loaded_after(
        "from pathlib import Path\n"
        "from agent.certificates.storage import read_storage\n"
        "from agent.certificates.imported import facts\n"
        f"assert read_storage(Path({str(tmp_path)!r})) == []\n"
        "assert facts([]) == []\n"
    )
    assert "cryptography.x509" not in loaded


def test_a_stored_certificate_is_read_with_its_facts(tmp_path: Path) -> None:
    directory = tmp_path / "certificates" / "acme-v02" / "app.example.test"
    directory.mkdir(parents=True)
    (directory / "app.example.test.crt").write_text(_pem("app.example.test"))
    [found] = read_storage(tmp_path)
    assert found.domain_name == "app.example.test"
    assert found.subject_alternative_names == ["app.example.test"]
    assert found.key_algorithm == "ECDSA-P256"
    assert found.ca_directory == "acme-v02"
    assert found.source == "managed"


def test_an_imported_certificate_has_its_facts() -> None:
    chain = _pem("shop.example.test")
    entries = [
        ImportedCertificate(
            certificate_id="crt_1",
            domain_name="shop.example.test",
            certificate_chain=chain,
            private_key="(unused here)",
        ),
        ImportedCertificate(
            certificate_id="crt_2",
            domain_name="broken.example.test",
            certificate_chain="not a certificate",
            private_key="(unused here)",
        ),
    ]
    [found] = imported.facts(entries)
    assert found.domain_name == "shop.example.test"
    assert found.source == "imported"
    assert found.subject_alternative_names == ["shop.example.test"]
