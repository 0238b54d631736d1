"""Agent identity keys (Ed25519) and the challenge signature that proves them on each connection."""

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.challenge import PUBLIC_KEY_PREFIX, challenge_payload, key_fingerprint, sign_challenge

__all__ = [
    "PUBLIC_KEY_PREFIX",
    "challenge_payload",
    "generate_private_key",
    "key_fingerprint",
    "load_private_key_pem",
    "parse_public_key",
    "private_key_to_pem",
    "public_key_text",
    "sign_challenge",
    "verify_challenge",
]


def generate_private_key() -> Ed25519PrivateKey:
    """Create a fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    """Serialise a private key as unencrypted PKCS#8 PEM (the file itself is kept 0600)."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    """Load a PEM private key; raises ``ValueError`` when it is not an Ed25519 key."""
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the key file does not hold an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Return the public half as ``ed25519:<base64 of the 32 raw bytes>``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>``; raises ``ValueError`` on anything else."""
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError("public key must start with 'ed25519:'")
    try:
        raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
    except ValueError as exc:
        raise ValueError("public key is not valid base64") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_challenge(public_text: str, nonce: str, server_id: str, signature: str) -> bool:
    """Check an agent's challenge signature against its enrolled public key."""
    try:
        public = parse_public_key(public_text)
        sig = base64.b64decode(signature, validate=True)
        public.verify(sig, challenge_payload(nonce, server_id))
    except (ValueError, InvalidSignature):
        return False
    return True
