"""The agent's key on libcrypto: the same keys, files and signatures as ``cryptography``'s."""

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.identity import AgentKey
from shared.crypto import (
    generate_private_key,
    load_private_key_pem,
    private_key_to_pem,
    public_key_text,
    sign_challenge,
    verify_challenge,
)
from tests.unit.agent.test_idle_imports import _loaded_after

ROOT = Path(__file__).resolve().parents[3]


def test_a_key_cryptography_wrote_signs_exactly_as_cryptography_does() -> None:
    # Ed25519 is deterministic: the same key and message give the same signature bytes.
    theirs = generate_private_key()
    ours = AgentKey.from_pem(private_key_to_pem(theirs))
    assert ours.public_text() == public_key_text(theirs)
    for message in (b"", b"x", b"berth" * 1000):
        assert ours.sign(message) == theirs.sign(message)


def test_a_key_the_agent_writes_is_a_pkcs8_key_for_cryptography() -> None:
    ours = AgentKey.generate()
    theirs = load_private_key_pem(ours.pem())
    assert public_key_text(theirs) == ours.public_text()
    raw = theirs.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    assert AgentKey(raw).public_text() == ours.public_text()


def test_the_challenge_it_signs_verifies_for_the_coordinator() -> None:
    key = AgentKey.generate()
    signature = sign_challenge(key, "n" * 43, "srv_1")
    assert verify_challenge(key.public_text(), "n" * 43, "srv_1", signature)
    assert not verify_challenge(key.public_text(), "n" * 43, "srv_2", signature)
    assert not verify_challenge(AgentKey.generate().public_text(), "n" * 43, "srv_1", signature)


def _pem(der: bytes) -> bytes:
    body = base64.b64encode(der)
    return b"-----BEGIN PRIVATE KEY-----\n" + body + b"\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
        _pem(b"\x30\x2e" + b"\x00" * 46),  # the right size, not an Ed25519 key
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    ],
)
def test_what_is_not_an_ed25519_pkcs8_key_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="key"):
        AgentKey.from_pem(data)


def test_the_key_is_not_shown_by_its_repr() -> None:
    key = AgentKey.generate()
    assert key.public_text() in repr(key)
    assert base64.b64encode(key.pem()).decode() not in repr(key)


def test_signing_loads_no_cryptography() -> None:
    loaded = _loaded_after(
        "from agent.identity import AgentKey\nassert len(AgentKey.generate().sign(b'x')) == 64\n"
    )
    assert "agent.identity" in loaded
    assert not {m for m in loaded if m.startswith("cryptography")}
