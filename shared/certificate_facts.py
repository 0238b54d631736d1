"""The facts of an X.509 certificate as Berth reports them (agent) and checks them (coordinator)."""

import hashlib
from datetime import UTC

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from shared.messages.certificates import CertificateObservation

_CURVES = {"secp256r1": "ECDSA-P256", "secp384r1": "ECDSA-P384", "secp521r1": "ECDSA-P521"}


def key_algorithm(cert: x509.Certificate) -> str:
    """``ECDSA-P256``, ``RSA-2048``, ``Ed25519``... of the certificate's public key."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _CURVES.get(key.curve.name, f"ECDSA-{key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA-{key.key_size}"
    return type(key).__name__


def issuer_name(cert: x509.Certificate) -> str:
    """The issuer's common name (or its whole distinguished name when it has none)."""
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.issuer.rfc4514_string()


def sans(cert: x509.Certificate) -> list[str]:
    """DNS names (then IP addresses) the certificate covers."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(ext.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return names


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lowercase hex (what ``openssl x509 -fingerprint`` shows)."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def observe(
    domain: str, cert: x509.Certificate, source: str = "managed", directory: str | None = None
) -> CertificateObservation:
    """The facts of one leaf certificate."""
    return CertificateObservation(
        domain_name=domain,
        source=source,  # type: ignore[arg-type]
        issuer=issuer_name(cert)[:500],
        subject_alternative_names=sans(cert)[:100],
        not_before=cert.not_valid_before_utc.astimezone(UTC),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
        fingerprint=fingerprint(cert),
        key_algorithm=key_algorithm(cert),
        ca_directory=directory,
    )
