"""Agent identity keys (Ed25519) and the challenge signature that proves them on each connection."""

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_KEY_PREFIX = "ed25519:"
_AUTH_CONTEXT = b"berth.v1 agent-auth\n"


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


def key_fingerprint(public_text: str) -> str:
    """Return a short, stable fingerprint of a public key for display and audit."""
    digest = hashlib.sha256(public_text.encode("ascii")).hexdigest()
    return "SHA256:" + digest[:32]


def challenge_payload(nonce: str, server_id: str) -> bytes:
    """Bytes the agent signs: a fixed context, the per-connection nonce and the server id.

    The nonce is fresh for every websocket connection, so a captured signature cannot be
    replayed on another connection; the context string keeps the signature from being valid
    for any other purpose.
    """
    return _AUTH_CONTEXT + nonce.encode("ascii") + b"\n" + server_id.encode("utf-8")


def sign_challenge(key: Ed25519PrivateKey, nonce: str, server_id: str) -> str:
    """Sign the challenge for this connection; returns base64."""
    return base64.b64encode(key.sign(challenge_payload(nonce, server_id))).decode("ascii")


def verify_challenge(public_text: str, nonce: str, server_id: str, signature: str) -> bool:
    """Check an agent's challenge signature against its enrolled public key."""
    try:
        public = parse_public_key(public_text)
        sig = base64.b64decode(signature, validate=True)
        public.verify(sig, challenge_payload(nonce, server_id))
    except (ValueError, InvalidSignature):
        return False
    return True
