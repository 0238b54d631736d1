"""Revoke a certificate Caddy obtained, at its ACME CA, signed with the certificate's own key.

Caddy 2.6 has no revocation command, but RFC 8555 (7.6) lets whoever holds a certificate's
private key revoke it: a ``revokeCert`` request whose JWS carries that key (``jwk``) instead of
an account. The key is in Caddy's storage next to the certificate, on this server, so the agent
revokes and the key never leaves it. josepy (the JOSE library certbot's ACME client is built
on) does the key and signature parts; the request around them is three small HTTP calls.
"""

import asyncio
import base64
import hashlib
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.http_client import fetch, locate

_TIMEOUT: Final = 30.0
_JOSE: Final = "application/jose+json"


class RevocationFailed(Exception):
    """The certificate was not revoked; the message says why (the CA's problem detail)."""


@dataclass(frozen=True)
class StoredCertificate:
    """A certificate and its key as Caddy stored them."""

    crt: Path
    key: Path


def find_stored(root: Path, name: str, fingerprint: str) -> StoredCertificate | None:
    """The stored certificate for ``name`` whose leaf's SHA-256 is ``fingerprint``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    for crt in sorted((root / "certificates").glob(f"*/{name}/{name}.crt")):
        try:
            leaf = x509.load_pem_x509_certificates(crt.read_bytes())[0]
        except (OSError, ValueError, IndexError):
            continue
        if hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest() == fingerprint:
            return StoredCertificate(crt, crt.with_suffix(".key"))
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed(key_pem: bytes, url: str, nonce: str, payload: dict[str, Any]) -> dict[str, str]:
    """The flattened JWS of ``payload`` for ``url``, signed with (and carrying) the key."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from josepy.jwa import ES256, ES384, ES512, RS256, JWASignature
    from josepy.jwk import JWK, JWKEC, JWKRSA

    private = load_pem_private_key(key_pem, password=None)
    jwk: JWK
    alg: JWASignature | None
    if isinstance(private, ec.EllipticCurvePrivateKey):
        jwk = JWKEC(key=private)
        algs = {"secp256r1": ES256, "secp384r1": ES384, "secp521r1": ES512}
        alg = algs.get(private.curve.name)
        if alg is None:
            raise RevocationFailed(f"the key's curve {private.curve.name} cannot sign for ACME")
    elif isinstance(private, rsa.RSAPrivateKey):
        jwk, alg = JWKRSA(key=private), RS256
    else:
        raise RevocationFailed("the certificate's key is neither EC nor RSA")
    protected = {"alg": alg.name, "jwk": jwk.public_key().to_partial_json(), "nonce": nonce}
    protected["url"] = url
    head = _b64(json.dumps(protected).encode())
    body = _b64(json.dumps(payload).encode())
    signature = alg.sign(jwk.key, f"{head}.{body}".encode("ascii"))
    return {"protected": head, "payload": body, "signature": _b64(signature)}


async def revoke(directory: str, trusted_roots: str, stored: StoredCertificate) -> None:
    """Revoke ``stored`` at the CA of ``directory`` (``trusted_roots``: a PEM file the CA's own
    HTTPS is checked against, "" for the system's). ``RevocationFailed`` says why not."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        leaf = x509.load_pem_x509_certificates(stored.crt.read_bytes())[0]
        key_pem = stored.key.read_bytes()
    except (OSError, ValueError, IndexError) as exc:
        raise RevocationFailed(f"the stored certificate or key is unreadable: {exc}") from exc
    payload = {"certificate": _b64(leaf.public_bytes(Encoding.DER)), "reason": 0}
    context = ssl.create_default_context(cafile=trusted_roots or None)
    problem: dict[str, Any] = {}
    try:
        async with asyncio.timeout(_TIMEOUT):
            _, endpoints, _ = await _ask(context, "GET", directory)
            revoke_url, nonce_url = endpoints["revokeCert"], endpoints["newNonce"]
            _, _, headers = await _ask(context, "HEAD", nonce_url)
            nonce = headers["replay-nonce"]
            for _ in range(2):  # a badNonce answer carries a fresh nonce: one more try
                body = json.dumps(_signed(key_pem, revoke_url, nonce, payload)).encode()
                status, found, headers = await _ask(context, "POST", revoke_url, body)
                if status == 200:
                    return
                problem = found if isinstance(found, dict) else {}
                nonce = headers.get("replay-nonce", nonce)
                if not str(problem.get("type", "")).endswith(":badNonce"):
                    break
    except (OSError, TimeoutError, KeyError, TypeError, ValueError) as exc:
        raise RevocationFailed(f"the CA at {directory} could not be asked: {exc}") from exc
    detail = problem.get("detail") or problem.get("type") or "refused"
    raise RevocationFailed(f"the CA refused the revocation: {detail}")


async def _ask(
    context: ssl.SSLContext, method: str, url: str, body: bytes | None = None
) -> tuple[int, Any, Mapping[str, str]]:
    """One call to the CA: its status, its JSON answer (None when there is none) and headers."""
    endpoint, target = locate(url, context)
    headers = {"Content-Type": _JOSE} if body is not None else {}
    answer = await fetch(endpoint, method, target, headers=headers, body=body)
    raw = answer.body
    return answer.status, json.loads(raw) if raw.strip() else None, answer.headers
