"""Checks of an imported certificate: parsable, key matches, chain ordered, name covered, valid now.

Each failure is a 400 naming the rule that failed; nothing is stored before all of them pass.
"""

import itertools
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from shared.certificate_facts import observe, sans
from shared.errors import InvalidRequest
from shared.messages.certificates import CertificateObservation


def _refuse(rule: str, message: str, **details: object) -> InvalidRequest:
    return InvalidRequest(message, details={"rule": rule, **details})


def _chain(pem: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise _refuse("chain-parsable", f"certificateChain is not PEM certificates: {exc}") from exc
    if not chain:
        raise _refuse("chain-parsable", "certificateChain holds no certificate")
    return chain


def _key_matches(leaf: x509.Certificate, pem: str) -> None:
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except TypeError as exc:  # the key is encrypted: Berth needs it in the clear to serve it
        raise _refuse("key-parsable", "privateKey is encrypted; import it unencrypted") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _refuse("key-parsable", f"privateKey is not a PEM private key: {exc}") from exc
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise _refuse("key-matches", "privateKey does not belong to the first certificate")


def _ordered(chain: list[x509.Certificate]) -> None:
    for index, (child, parent) in enumerate(itertools.pairwise(chain)):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise _refuse(
                "chain-ordered",
                f"certificate {index + 1} of the chain is not issued by certificate {index + 2}: "
                "put the leaf first, then each issuer in order",
                position=index + 1,
            ) from exc


def covers(names: list[str], domain: str) -> bool:
    """Whether a SAN list covers ``domain`` (a wildcard covers exactly one more label)."""
    for name in (n.lower().rstrip(".") for n in names):
        if name == domain:
            return True
        if name.startswith("*.") and domain.split(".", 1)[-1] == name[2:] and "." in domain:
            return True
    return False


def check(chain_pem: str, key_pem: str, domain: str) -> CertificateObservation:
    """The leaf's facts once every rule passes; ``InvalidRequest`` naming the first that fails."""
    chain = _chain(chain_pem)
    leaf = chain[0]
    _ordered(chain)  # first: out of order, the "leaf" would be an issuer and the key check lie
    _key_matches(leaf, key_pem)
    if not covers(sans(leaf), domain):
        raise _refuse(
            "name-covered",
            f"the certificate does not cover {domain}",
            subjectAlternativeNames=sans(leaf),
        )
    now = datetime.now(UTC)
    if leaf.not_valid_after_utc <= now:
        raise _refuse(
            "not-expired",
            f"the certificate expired at {leaf.not_valid_after_utc.isoformat()}",
            notAfter=leaf.not_valid_after_utc.isoformat(),
        )
    if leaf.not_valid_before_utc > now:
        raise _refuse(
            "already-valid",
            f"the certificate is not valid before {leaf.not_valid_before_utc.isoformat()}",
            notBefore=leaf.not_valid_before_utc.isoformat(),
        )
    return observe(domain, leaf, source="imported")
