"""Agent identity crypto: key encoding, challenge signatures bound to nonce and server."""

import pytest

from shared.crypto import (
    generate_private_key,
    key_fingerprint,
    load_private_key_pem,
    parse_public_key,
    private_key_to_pem,
    public_key_text,
    sign_challenge,
    verify_challenge,
)

NONCE = "a" * 43


def test_signature_verifies_only_for_its_nonce_server_and_key() -> None:
    key = generate_private_key()
    public = public_key_text(key)
    signature = sign_challenge(key, NONCE, "srv_1")
    assert verify_challenge(public, NONCE, "srv_1", signature)
    assert not verify_challenge(public, "b" * 43, "srv_1", signature)
    assert not verify_challenge(public, NONCE, "srv_2", signature)
    assert not verify_challenge(public_key_text(generate_private_key()), NONCE, "srv_1", signature)
    assert not verify_challenge(public, NONCE, "srv_1", "not base64!")
    assert not verify_challenge("ed25519:garbage", NONCE, "srv_1", signature)


def test_private_key_pem_round_trip() -> None:
    key = generate_private_key()
    loaded = load_private_key_pem(private_key_to_pem(key))
    assert public_key_text(loaded) == public_key_text(key)


@pytest.mark.parametrize("text", ["rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"])
def test_malformed_public_keys_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"public key|32 bytes"):
        parse_public_key(text)


def test_fingerprint_is_stable_and_distinct() -> None:
    a, b = public_key_text(generate_private_key()), public_key_text(generate_private_key())
    assert key_fingerprint(a) == key_fingerprint(a)
    assert key_fingerprint(a) != key_fingerprint(b)
    assert key_fingerprint(a).startswith("SHA256:")
