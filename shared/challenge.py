"""The agent's proof of identity on each connection: what it signs, and the key's text form.

Kept apart from ``shared.crypto`` (the key operations on ``cryptography``) so that the agent,
which signs with libcrypto directly (``agent/identity.py``), never imports ``cryptography``.
"""

import base64
import hashlib
from typing import Final, Protocol

PUBLIC_KEY_PREFIX: Final = "ed25519:"
_AUTH_CONTEXT: Final = b"berth.v1 agent-auth\n"


class Signer(Protocol):
    """An Ed25519 private key (the agent's ``AgentKey`` or ``cryptography``'s)."""

    def sign(self, data: bytes) -> bytes:
        """The signature of ``data``."""
        ...


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


def sign_challenge(key: Signer, nonce: str, server_id: str) -> str:
    """Sign the challenge for this connection; returns base64."""
    return base64.b64encode(key.sign(challenge_payload(nonce, server_id))).decode("ascii")
